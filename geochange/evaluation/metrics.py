"""Image and label metrics in plain numpy, so a quality report needs no extra packages.

``psnr`` and ``ssim`` compare a generated image with a reference; ``confusion_matrix`` and the IoU
functions compare a segmenter's reading of an image with the mask it was painted from;
``seam_ratio`` finds the borders between blocks painted separately; ``masked_correlation`` and
``sharpness`` compare two acquisitions of one place inside a mask (unchanged or changed land).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.ndimage import gaussian_filter

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
"""Gaussian window of Wang et al. (2004): sigma 1.5, cut at 3.5 sigma (an 11 x 11 window)."""
SSIM_RADIUS = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
SSIM_K1, SSIM_K2 = 0.01, 0.03
LUMA = (0.299, 0.587, 0.114)
MIN_PIXELS = 100
"""Fewest interior pixels of a class, changed and unchanged, for its sharpness to count."""
"""Rec. 601 weights of R, G and B in the luminance that ``sharpness`` differentiates."""


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB (inf for identical arrays): pixel fidelity on a log scale,
    so small and large errors both read as differences of a few dB."""
    a, b = _same_shape(a, b)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def ssim(
    a: np.ndarray, b: np.ndarray, data_range: float = 255.0, mask: np.ndarray | None = None
) -> float:
    """Structural similarity (Wang et al. 2004) of (C, H, W) or (H, W) arrays, averaged over
    channels: unlike PSNR it weighs local structure, which is what a viewer notices.

    The SSIM map is kept where the 11 x 11 window lies inside the image (as in the reference
    implementation), so pixels within 5 px of the edge are not counted. With ``mask`` (bool
    (H, W)) only the map's pixels where ``mask`` is True are averaged (nan when there are none),
    e.g. to score the unchanged area alone; windows still see the pixels around the mask.
    """
    a, b = _same_shape(a, b)
    if a.ndim == 2:
        a, b = a[None], b[None]
    if a.ndim != 3:
        raise ValueError(f"ssim needs (C, H, W) or (H, W) arrays, got shape {a.shape}")
    height, width = a.shape[1:]
    if min(height, width) <= 2 * SSIM_RADIUS:
        raise ValueError(f"ssim needs images over {2 * SSIM_RADIUS} px, got {height}x{width}")
    inner = (slice(SSIM_RADIUS, height - SSIM_RADIUS), slice(SSIM_RADIUS, width - SSIM_RADIUS))
    keep = np.ones((height, width), bool)
    if mask is not None:
        if mask.shape != (height, width):
            raise ValueError(f"mask shape {mask.shape} does not match image {(height, width)}")
        keep = mask.astype(bool)
    keep = keep[inner]
    if not keep.any():
        return float("nan")
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    scores = []
    for x, y in zip(a, b, strict=True):
        mu_x, mu_y = _blur(x), _blur(y)
        var_x = _blur(x * x) - mu_x**2
        var_y = _blur(y * y) - mu_y**2
        cov = _blur(x * y) - mu_x * mu_y
        index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
            (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
        )
        scores.append(index[inner][keep].mean())
    return float(np.mean(scores))


def confusion_matrix(
    truth: np.ndarray, predicted: np.ndarray, num_classes: int = 8, ignore: int = 255
) -> np.ndarray:
    """Pixel counts (num_classes x num_classes, int64), rows = truth, columns = prediction;
    pixels where ``truth == ignore`` (no data) are skipped."""
    truth, predicted = np.asarray(truth).ravel(), np.asarray(predicted).ravel()
    if truth.shape != predicted.shape:
        raise ValueError(f"truth has {truth.size} pixels, prediction {predicted.size}")
    valid = truth != ignore
    truth, predicted = truth[valid].astype(np.int64), predicted[valid].astype(np.int64)
    for name, values in (("truth", truth), ("prediction", predicted)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} holds values outside 0..{num_classes - 1} and {ignore}")
    counts = np.bincount(truth * num_classes + predicted, minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def per_class_iou(confusion: np.ndarray) -> np.ndarray:
    """Intersection over union of each class; nan for a class absent from truth and prediction,
    which has no IoU rather than a perfect or a zero one."""
    confusion = np.asarray(confusion, dtype=np.float64)
    hits = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - hits
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, hits / union, np.nan)


def mean_iou(confusion: np.ndarray) -> float:
    """Mean IoU over the classes present in truth or prediction (nan if none are): every class
    counts the same, so rare classes such as water or roads are not drowned by the common ones."""
    iou = per_class_iou(confusion)
    present = ~np.isnan(iou)
    return float(iou[present].mean()) if present.any() else float("nan")


def seam_ratio(image: np.ndarray, border: int) -> float:
    """Mean absolute step across block borders over the mean step elsewhere, for a (C, H, W)
    image painted in ``border``-pixel blocks: about 1 when the blocks join seamlessly, more when
    a seam shows.

    Steps are averaged per line (a column or row of neighbour differences, over channels); the
    border lines are those between pixel ``k * border - 1`` and ``k * border`` for every
    ``0 < k * border`` inside the image, in both directions; every other line is "inside".
    """
    if border < 1:
        raise ValueError(f"border must be a positive number of pixels, got {border}")
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 3:
        raise ValueError(f"seam_ratio needs a (C, H, W) image, got shape {image.shape}")
    cols = np.abs(np.diff(image, axis=2)).mean(axis=(0, 1))
    rows = np.abs(np.diff(image, axis=1)).mean(axis=(0, 2))
    col_seams = np.arange(border - 1, cols.size, border)
    row_seams = np.arange(border - 1, rows.size, border)
    if not (col_seams.size or row_seams.size):
        raise ValueError(f"a {image.shape[1]}x{image.shape[2]} image has no {border} px border")
    seams = np.r_[cols[col_seams], rows[row_seams]]
    inside = np.r_[np.delete(cols, col_seams), np.delete(rows, row_seams)]
    return float(seams.mean() / inside.mean())


def masked_correlation(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Pearson correlation of two (C, H, W) or (H, W) images over the pixels where ``mask``
    (bool (H, W)) is True, all bands pooled into one sample (nan with under two pixels or a
    constant image there).

    Pooled rather than averaged per band, because that is the definition that reproduces the
    published reference figures on the SECOND / LsSCD examples: real pairs 0.30 in unchanged and
    0.19 in changed land, the ChangeAnywhere authors' synthetic t2 0.80 and -0.16.
    """
    a, b = _same_shape(a, b)
    mask = _mask(mask, a.shape[-2:])
    if mask.sum() < 2:
        return float("nan")
    x, y = a[..., mask].ravel(), b[..., mask].ravel()
    x, y = x - x.mean(), y - y.mean()
    norm = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return float(np.sum(x * y) / norm) if norm > 0 else float("nan")


def sharpness(image: np.ndarray, mask: np.ndarray) -> float:
    """Gradient energy of an RGB (3, H, W) image's luminance inside ``mask`` (bool (H, W)): the
    mean squared difference of horizontal neighbours plus that of vertical neighbours, both
    pixels of a pair inside the mask (nan where no such pair exists in either direction).

    Pairs that straddle the mask edge are left out, so a step between changed and unchanged
    land, or a blend across it, is not counted as detail of either side.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 3 or image.shape[0] != len(LUMA):
        raise ValueError(f"sharpness needs an RGB (3, H, W) image, got shape {image.shape}")
    luminance = np.tensordot(LUMA, image, axes=1)
    mask = _mask(mask, luminance.shape)
    across = np.diff(luminance, axis=1)[mask[:, 1:] & mask[:, :-1]]
    down = np.diff(luminance, axis=0)[mask[1:] & mask[:-1]]
    if not (across.size and down.size):
        return float("nan")
    return float(np.mean(across**2) + np.mean(down**2))


def sharpness_ratio(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """``sharpness(b) / sharpness(a)`` inside ``mask``: below 1 when ``b`` is blurrier than ``a``
    (what an autoencoder does), above 1 when it is noisier; nan when ``a`` is flat there."""
    reference = sharpness(a, mask)
    return sharpness(b, mask) / reference if reference > 0 else float("nan")


def same_class_sharpness_ratio(
    image: np.ndarray, classes: np.ndarray, changed: np.ndarray, border: int = 3
) -> float:
    """Sharpness of ``image``'s changed land over that of its unchanged land of the same class
    (classes weighted by their changed area), both at least ``border`` pixels from any class
    or change edge: is new water as smooth as the old water, a new roof as crisp as the old
    roofs? Comparing changed with all unchanged land instead mixes in which classes changed
    (a flood in a town reads as blur) and the edges a thin change is made of. nan where no
    class has both."""
    classes = np.asarray(classes)
    changed = _mask(changed, classes.shape)
    region = classes.astype(np.int64) * 2 + changed
    edge = np.zeros(region.shape, bool)
    edge[:, 1:] |= region[:, 1:] != region[:, :-1]
    edge[:, :-1] |= region[:, 1:] != region[:, :-1]
    edge[1:] |= region[1:] != region[:-1]
    edge[:-1] |= region[1:] != region[:-1]
    interior = ndimage.distance_transform_edt(~edge) > border
    ratios, weights = [], []
    for cls in np.unique(classes[changed & interior]):
        new, old = (interior & (classes == cls) & flag for flag in (changed, ~changed))
        if new.sum() >= MIN_PIXELS and old.sum() >= MIN_PIXELS:
            reference = sharpness(image, old)
            if reference > 0:
                ratios.append(sharpness(image, new) / reference)
                weights.append(new.sum())
    return float(np.average(ratios, weights=weights)) if ratios else float("nan")


def _mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``mask`` as bool, checked against the images' (H, W)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != tuple(shape):
        raise ValueError(f"mask shape {mask.shape} does not match image {tuple(shape)}")
    return mask


def _same_shape(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as float64 (uint8 differences would wrap around)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"arrays differ in shape: {a.shape} and {b.shape}")
    return a, b


def _blur(x: np.ndarray) -> np.ndarray:
    """The SSIM window's weighted local mean."""
    return gaussian_filter(x, SSIM_SIGMA, truncate=SSIM_TRUNCATE, mode="reflect")
