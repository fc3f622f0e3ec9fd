"""Support package for the PyTorch quick-start course (after 小土堆's P4–P33).

One module per job, named the way a beginner would guess:

* :mod:`course_utils.settings`     – fast mode (CI), folders, offline switch
* :mod:`course_utils.data`         – CIFAR-10, ants/bees, demo photos, image folders
* :mod:`course_utils.ants_bees`    – the ants/bees set and the course's label layout
* :mod:`course_utils.sources`      – what the data sources share: their one line, the data folder
* :mod:`course_utils.images`       – photo files: list them, open them safely as RGB
* :mod:`course_utils.image_check`  – ``check_image``: the CHW/HWC layout before ``add_image``
* :mod:`course_utils.cifar_batches` – the bundled sample in the official CIFAR-10 file format
* :mod:`course_utils.caches`       – cache files that detect damage and are rebuilt
* :mod:`course_utils.download`     – bounded, checksummed downloads
* :mod:`course_utils.archives`     – an archive's folder unpacked safely, checked later
* :mod:`course_utils.models`       – the course's Tudui network and its variants, FastCNN
* :mod:`course_utils.recipes`      – every training setting in one table; a run's settings
* :mod:`course_utils.training`     – prepare a run (resume, folder), build its parts, train it
* :mod:`course_utils.engine`       – ``train_one_epoch`` / ``evaluate`` / ``fit``
* :mod:`course_utils.errors`       – errors that name settings (``lr``; the CLI: ``--lr``)
* :mod:`course_utils.distributed`  – one process per device under ``torchrun`` (DDP)
* :mod:`course_utils.checkpoints`  – the checkpoint format: save, safe load, newest of a run,
                                    a file "saved on a GPU"
* :mod:`course_utils.runs`         – a new folder for every run
* :mod:`course_utils.files`        – atomic file writes
* :mod:`course_utils.pretrained`   – torchvision's pretrained weights, offline when cached
* :mod:`course_utils.devices`      – pick cuda → mps → cpu (the one device check), precision
* :mod:`course_utils.loaders`      – ``TensorLoader`` (fast batches from uint8 tensors), its
                                    torchrun shard, ``safe_num_workers``
* :mod:`course_utils.layers`       – conv/pool output sizes, the conv-arithmetic explorer
* :mod:`course_utils.conv_sizes`   – the conv/pool output-size formula (layers re-exports it)
* :mod:`course_utils.predict`      – classify photos with a trained checkpoint
* :mod:`course_utils.tb`           – launch/show TensorBoard, read event files back, plot them
* :mod:`course_utils.viz`          – image grids and the transforms playground
* :mod:`course_utils.exercises`    – ``check()`` / ``hint()`` / ``solution()``
* :mod:`course_utils.cli`          – ``python -m course_utils train|predict``
* :mod:`course_utils.interrupts`   – Ctrl+C / SIGTERM: one line, exit code 130 / 143
"""

from course_utils.settings import fast_mode, scaled

__all__ = ["fast_mode", "scaled", "__version__"]
__version__ = "0.1.0"
