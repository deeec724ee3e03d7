"""Image captioning with visual attention (Show, Attend and Tell; Xu et al. 2015).

encoder.py  conv → ReLU → max-pool blocks: an image → L annotation vectors a_i
decoder.py  the attention LSTM decoder, soft or hard attention, forward/backward step by step
model.py    config, loss (doubly stochastic regulariser; REINFORCE for hard attention), generate
baseline.py the article's printed decoder, which attends over its own LSTM states
bleu.py     corpus BLEU-4  (beam search: attention_np.decoding)
"""
