"""seedvar datasets: named tasks whose loaders keep data on the device and batch it as whole tensors.

    task = load_task("indian_pines", split_seed=7, root="../shared/datasets", window=25)
    for x, y in task.train.batches(128, order=torch.Generator().manual_seed(7)): ...

Datasets: cifar10 (python-version batches under <root>/cifar10/cifar-10-batches-py/), the published
hyperspectral scenes (indian_pines, salinas, salinas_a, pavia_u, pavia_c, ksc, botswana; files under
<root>/<name>/), hsi_mat (any cube + ground-truth .mat), synthetic_cifar / synthetic_hsi (no files), image_folder
(class folders of images) and torchvision:<Class> (any image-classification dataset of torchvision).
dataset_options(name) lists each one's options and defaults. Problems raise DataError with one line.
"""

from seedvar.data.core import (
    KNOWN_FINGERPRINTS,
    BatchLoader,
    DataError,
    Task,
    combine,
    data_root,
    fingerprint,
)
from seedvar.data.registry import (
    DatasetRow,
    available_datasets,
    check_options,
    dataset_options,
    list_datasets,
    load_task,
)
from seedvar.data.vision import SEQUENCE_OPTIONS

__all__ = [
    "KNOWN_FINGERPRINTS",
    "SEQUENCE_OPTIONS",
    "BatchLoader",
    "DatasetRow",
    "DataError",
    "Task",
    "available_datasets",
    "check_options",
    "combine",
    "data_root",
    "dataset_options",
    "fingerprint",
    "list_datasets",
    "load_task",
]
