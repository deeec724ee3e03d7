"""An attention atlas (Activation Atlas / AttentionViz idea): queries and keys of many inputs
projected to 2-D, coloured by class, so heads whose queries and keys meet show up as clusters."""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import as_float_array


def pca_2d(x: np.ndarray) -> np.ndarray:
    """PCA by SVD: X_c = X − mean = U S Vᵀ,  coords = X_c V[:, :2]  (N, D) → (N, 2).
    Signs are fixed so each component's largest-magnitude loading is positive."""
    xc = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    comps = vt[:2]
    comps = comps * np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])[:, None]
    coords = xc @ comps.T
    return np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))       # D = 1 → second column 0


def project_2d(vectors, method: str = "pca", seed: int = 0, **tsne_options) -> np.ndarray:
    """(N, D) → (N, 2) with "pca" (NumPy SVD) or "tsne" (scikit-learn, perplexity ≤ (N−1)/3;
    ``tsne_options`` go to ``sklearn.manifold.TSNE``, e.g. ``max_iter=300`` for speed)."""
    x = as_float_array(vectors, "vectors", ndim=2, check_finite=True).astype(np.float64)
    if method == "pca":
        return pca_2d(x)
    if method != "tsne":
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
    try:
        from sklearn.manifold import TSNE
    except ImportError as err:
        raise ImportError("method='tsne' needs scikit-learn; use method='pca'") from err
    perplexity = float(np.clip((len(x) - 1) / 3, 1.0, 30.0))
    options = {"perplexity": perplexity, "init": "pca", "random_state": seed, **tsne_options}
    return TSNE(2, **options).fit_transform(x)


def align_queries_keys(queries, keys):
    """AttentionViz's normalisation, which leaves every softmax(q·k) unchanged:
    k ← k − mean(k) + mean(q) (adds q·c, the same for every key of a query, to each score), then
    q ← q·s and k ← k/s with s = sqrt(mean‖k‖ / mean‖q‖) (products q·k unchanged), so both
    clouds share a centre (before scaling) and a mean norm (after) and overlap in the atlas."""
    q = as_float_array(queries, "queries", ndim=2, check_finite=True)
    k = as_float_array(keys, "keys", ndim=2, check_finite=True)
    if q.shape[1] != k.shape[1]:
        raise ValueError(f"queries {q.shape} and keys {k.shape} must have the same width")
    k = k - k.mean(axis=0) + q.mean(axis=0)
    scale = np.sqrt(np.linalg.norm(k, axis=1).mean() / max(np.linalg.norm(q, axis=1).mean(), 1e-12))
    return q * scale, k / scale


def attention_atlas(vectors, labels, kinds=None, method: str = "pca", ax=None, title=None,
                    seed: int = 0, tsne_options=None):
    """Scatter of ``vectors`` (N, D) projected to 2-D (:func:`project_2d`), coloured by
    ``labels`` (N classes: head, token type, …); ``kinds`` (N strings such as "query"/"key")
    picks the marker. Returns the Figure."""
    import matplotlib.pyplot as plt
    coords = project_2d(vectors, method, seed, **(tsne_options or {}))
    labels = np.asarray([str(v) for v in labels])
    kinds = np.asarray(["point"] * len(coords) if kinds is None else [str(v) for v in kinds])
    if len(labels) != len(coords) or len(kinds) != len(coords):
        raise ValueError(f"labels ({len(labels)}) and kinds ({len(kinds)}) must have one entry "
                         f"per vector ({len(coords)})")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 5.5), constrained_layout=True)
    fig = ax.figure
    colours = plt.get_cmap("tab10" if len(set(labels)) <= 10 else "tab20")
    markers = dict(zip(dict.fromkeys(kinds), "o^sDvP*X"))
    for c, label in enumerate(dict.fromkeys(labels)):
        for kind, marker in markers.items():
            sel = (labels == label) & (kinds == kind)
            if sel.any():
                name = label if kinds[0] == "point" and len(markers) == 1 else f"{label} ({kind})"
                ax.scatter(*coords[sel].T, s=14, marker=marker, color=colours(c % colours.N),
                           alpha=0.75, label=name, edgecolors="none")
    ax.set_xlabel(f"{method.upper()} 1")
    ax.set_ylabel(f"{method.upper()} 2")
    ax.legend(fontsize=7, markerscale=1.5, loc="best", ncols=1 + len(markers) // 3)
    ax.set_title(title or f"attention atlas ({method.upper()}, {len(coords)} vectors)")
    return fig
