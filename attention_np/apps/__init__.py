"""Models that exist for one application of the article (§5):

``seq2seq`` (date translation, §5.1), ``las`` (speech recognition, Listen-Attend-Spell),
``captioning`` (Show, Attend and Tell), ``sentiment`` (a self-attention classifier) and
``recommend`` (the Deep Interest Network).
"""
