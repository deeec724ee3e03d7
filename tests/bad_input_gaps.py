"""Rows of the bad-input table (tests/test_bad_input.py) that the library does not pass yet.

Each row runs as ``xfail(strict=True)`` with its reason: when the library gains the check, the
row passes, the strict xfail fails, and the row is deleted here. Rows are written
``"<entry>: <mutation-argument> …"`` (case ids ``<entry>-<mutation>-<argument>``).
"""

_P = "params."
GAPS = {
    "relu_forward computes np.where(x > 0, x, 0), which turns NaN into 0 (np.maximum(x, 0) "
    "would propagate it)": [
        "relu: nan-x", f"encoder_block: nan-{_P}W_1 nan-{_P}b_1",
        f"feed_forward: nan-h nan-{_P}W_1 nan-{_P}b_1"],
    "a max over an empty axis raises NumPy's 'zero-size array to reduction operation' error: "
    "define the empty case (no key: every row is dead, output 0) or raise a ValueError naming "
    "the argument": [
        "softmax: zero-K", "soft_attention: zero-K", "hard_attention: zero-K",
        "scaled_dot_product_attention: zero-K", "multi_head_attention: zero-K",
        "encoder_block: zero-T", "encoder: zero-T", "linformer_attention: zero-R",
        "favor_features: zero-F", "performer_attention: zero-F zero-K"],
    "1/√D with D = 0 gives inf/NaN or a ZeroDivisionError: raise a ValueError naming q": [
        "scaled_dot_score: zero-D", "scaled_dot_product_attention: zero-D",
        "block_sparse_attention: zero-D", "linformer_attention: zero-D", "favor_features: zero-D",
        "performer_attention: zero-D", "sliding_window_attention: zero-D",
        "kernels.flash_attention: zero-D", "kernels.sliding_window_attention: zero-D"],
    "hard attention samples from NaN probabilities and returns a finite context (a NaN score "
    "must give a NaN context, or a ValueError naming scores)": [
        "hard_attention: nan-scores inf-scores"],
    "the FFN's parameters are checked by linear_forward, whose messages name x, W, b instead "
    "of h, params['W_1'], params['b_1'], …": [
        f"encoder_block: dtype-{_P}W_1 dtype-{_P}b_1 rank+1-{_P}b_1 rank-1-{_P}b_1 "
        f"size0-{_P}b_1 dtype-{_P}W_2 dtype-{_P}b_2 rank+1-{_P}b_2 rank-1-{_P}b_2 size0-{_P}b_2",
        f"feed_forward: dtype-h size2-h dtype-{_P}W_1 rank+1-{_P}W_1 rank-1-{_P}W_1 "
        f"size0-{_P}W_1 size1-{_P}W_1 dtype-{_P}b_1 rank+1-{_P}b_1 rank-1-{_P}b_1 size0-{_P}b_1 "
        f"dtype-{_P}W_2 rank+1-{_P}W_2 rank-1-{_P}W_2 size0-{_P}W_2 size1-{_P}W_2 "
        f"dtype-{_P}b_2 rank+1-{_P}b_2 rank-1-{_P}b_2 size0-{_P}b_2"],
    "feed_forward_backward's message calls its upstream gradient 'dy'; the parameter is df": [
        "feed_forward: dout-shape dout-rank"],
    "encoder_forward reports a block's parameters as 'params', not as layers[i]": [
        "encoder: size2-x"],
    "conv1d_same_forward/backward do not validate their input": [
        "conv1d_same: dtype-alpha rank+1-alpha rank-1-alpha dtype-F rank+1-F rank-1-F zero-T "
        "dout-shape dout-rank"],
    "location_attention_forward does not check its params dict (dtype of every entry, shapes "
    "of b and w); T = 0 fails inside sliding_window_view": [
        f"location_attention: dtype-{_P}W dtype-{_P}U dtype-{_P}F dtype-{_P}b rank+1-{_P}b "
        f"rank-1-{_P}b size0-{_P}b dtype-{_P}w rank+1-{_P}w rank-1-{_P}w size0-{_P}w zero-T"],
    "DIN's activation unit does not check params b1, w2, b2, nor the backward's dscores": [
        f"din_activation: dtype-{_P}b1 rank+1-{_P}b1 rank-1-{_P}b1 size0-{_P}b1 dtype-{_P}w2 "
        f"dtype-{_P}b2 rank+1-{_P}b2 rank-1-{_P}b2 zero-P dout-shape dout-rank",
        f"din_attention: dtype-{_P}b1 rank+1-{_P}b1 rank-1-{_P}b1 size0-{_P}b1 dtype-{_P}w2 "
        f"dtype-{_P}b2 rank+1-{_P}b2 rank-1-{_P}b2 zero-P"],
    "elu_feature_map_forward/backward do not validate their input": [
        "elu_feature_map: dtype-x dout-shape dout-rank"],
    "kernelized_attention_forward does not validate its input": [
        "kernelized_attention: dtype-phi_q size0-phi_q size1-phi_q size3-phi_q dtype-phi_k "
        "rank+1-phi_k rank-1-phi_k size0-phi_k size1-phi_k size2-phi_k size3-phi_k dtype-v "
        "rank+1-v rank-1-v size0-v size1-v size2-v"],
    "favor_features_forward/backward do not validate their input": [
        "favor_features: dtype-x size3-x dtype-W rank+1-W rank-1-W size1-W dout-shape dout-rank"],
    "kernels.matmul cannot reshape an empty product (np.matmul returns it)": [
        "kernels.matmul: zero-D zero-E zero-Q"],
    "the kernel's online softmax keeps its running max with maxnum, which skips a NaN score: "
    "a NaN input gives a finite output": [
        "kernels.flash_attention: nan-q", "kernels.sliding_window_attention: nan-k"],
    "the kernel backward checks the rank of dout but not its shape": [
        "kernels.sliding_window_attention: dout-shape", "kernels.linear_attention: dout-shape"],
    "init.xavier_uniform's message names its 'shape', not the size argument of the public "
    "initialiser that called it": [
        "init_multi_head_params: d_model", "init_encoder_block: d_model", "init_din_params: D"],
    "split_heads/merge_heads do not validate x and num_heads (NumPy's reshape/unpack errors)": [
        "split_heads: num_heads", "merge_heads: x"],
    "EncoderConfig/init_encoder accept d_model not divisible by num_heads (the forward refuses it)":
        ["init_encoder: num_heads"],
    "din_attention_backward does not check dweights' shape": ["din_attention_backward: dweights"],
    "location_attention_backward reports a bad dalpha as soft attention's 'dweights' of shape "
    "(B, 1, T)": ["location_attention_backward: dalpha"],
}

_REASON = {f"{row.split(': ')[0]}-{case}": reason
           for reason, rows in GAPS.items() for row in rows for case in row.split(": ")[1].split()}


def gap(case_id: str) -> str | None:
    """The reason the row ``case_id`` is expected to fail, or None."""
    return _REASON.get(case_id)
