"""Drawing faces: candidate j of a dataset is made from its own seed.

`candidate_seed(seed, j)` derives the seed of candidate j from the run's `--seed`, so
any face can be re-made from (seed, j) alone. A generator's output for one noise vector
depends, in its last float bits, on how many vectors share the forward pass; so the
generator always runs on whole aligned blocks of BLOCK candidates
([0, 64), [64, 128), ...). That makes the images the same whatever the batch size,
worker count or resume point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synthface.errors import SynthfaceError

MAX_SEED = 2 ** 63 - 1  # seeds are int64 (NumPy's SeedSequence takes any; the journal stores int64)


def check_seed(seed, flag: str = "--seed") -> int:
    if not 0 <= seed <= MAX_SEED:
        raise SynthfaceError(f"{flag} must be from 0 to 2**63 - 1, got {seed}")
    return seed

BLOCK = 64


def candidate_seed(seed: int, j: int) -> int:
    """A 63-bit seed for candidate j, well mixed (SeedSequence), never colliding by
    accident between nearby (seed, j) pairs."""
    return int(np.random.SeedSequence([int(seed), int(j)]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def noise(seeds, z_dim: int) -> np.ndarray:
    """(B, z_dim) float32: the generator's input for each seed (torch's normal stream)."""
    import torch

    return torch.stack([torch.randn(z_dim, generator=torch.Generator().manual_seed(int(s)))
                        for s in seeds]).numpy()


class GeneratorSampler:
    """Faces from a trained generator: noise from each candidate's seed."""

    def __init__(self, checkpoint, device: str = "auto", targets=None):
        import torch

        from synthface.generator.weights import file_sha256, load_generator

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise SynthfaceError(f"--device {device}: no CUDA GPU is available here (use auto or cpu)")
        if not (device == "cpu" or device.startswith("cuda")):
            raise SynthfaceError(f"--device must be auto, cpu or cuda[:N], got '{device}'")
        self.device = device
        from synthface.generator.networks import fast_generator

        self.checkpoint = str(checkpoint)
        generator, self.meta = load_generator(checkpoint, device)
        self.generator = fast_generator(generator)  # the same images, computed faster
        self.z_dim = int(self.meta["arch"]["z_dim"])
        self.resolution = int(self.meta["arch"]["resolution"])
        self.identity = {"kind": "generator", "checkpoint": str(Path(checkpoint).resolve()),
                         "sha256": file_sha256(checkpoint), "arch": self.meta["arch"]}
        self.steering = None
        if targets:  # steered sampling (steering.py): part of what makes the dataset
            from synthface.generator.steering import Steering

            self.steering = Steering.open(checkpoint, targets)
            self.identity["steering"] = self.steering.spec
        self.targets = targets

    def spec(self):
        """What a worker process needs to build the same sampler (on CPU only: one GPU
        is better fed by one process)."""
        return ("generator", self.checkpoint, self.targets) if self.device == "cpu" else None

    def images(self, seeds) -> np.ndarray:
        """(B,) seeds -> (B, H, W, 3) uint8 RGB, in one forward pass."""
        z = noise(seeds, self.z_dim)
        if self.steering is not None:
            z = self.steering.move(z, seeds)
        return self.images_from_codes(z)

    def images_from_codes(self, z: np.ndarray) -> np.ndarray:
        """(B, z_dim) float32 codes -> (B, H, W, 3) uint8 RGB, in one forward pass."""
        import torch

        from synthface.core.imaging import to_uint8

        with torch.inference_mode():
            return to_uint8(self.generator(torch.from_numpy(np.ascontiguousarray(z, np.float32)).to(self.device)))


class ReplaySampler:
    """A stand-in generator that replays real faces from a folder: the face for a seed
    is fixed by the seed (index and a left-right flip). For testing everything
    downstream of sampling before a trained generator exists."""

    def __init__(self, folder, resolution: int = 64):
        from synthface.core.imagefiles import ImageSource, load_faces

        source = ImageSource(folder)
        if not source.names:  # refused here, before any folder is made
            raise SynthfaceError(f"--replay-faces {folder} holds no images (png, jpg, webp, bmp)")
        self.faces = load_faces(folder, resolution, progress=False)
        self.folder, self.resolution = str(folder), resolution
        self.identity = {"kind": "replay", "folder": str(Path(folder).resolve()),
                         "fingerprint": source.fingerprint(), "resolution": resolution}

    def spec(self):
        return ("replay", self.folder, self.resolution)

    def images(self, seeds) -> np.ndarray:
        out = np.empty((len(seeds), self.resolution, self.resolution, 3), np.uint8)
        for i, s in enumerate(seeds):
            face = self.faces[int(s) % len(self.faces)]
            out[i] = face[:, ::-1] if (int(s) >> 32) & 1 else face
        return out


MODELS = Path(__file__).resolve().parents[1] / "models"
# the default generator: celeba64, whose faces trained the better landmark models (dlib's
# and the CNN's, alone and beside real faces); scenes default to default64, whose scenes
# trained the better face detector (measured in docs/landmarks.md and docs/detector.md;
# why, in synthface/models/MODEL_CARD.md)
DEFAULT_CHECKPOINT = MODELS / "celeba64.safetensors"
SCENES_GENERATOR = "default64"


def generator_choice(checkpoint=None, scenes: bool = False):
    """The --checkpoint a run uses: the one given, else the default for what it makes
    (DEFAULT_CHECKPOINT's name for faces, SCENES_GENERATOR for scenes); the output plan
    and the run both ask here, so both name the same generator."""
    if checkpoint is not None:
        return checkpoint
    return SCENES_GENERATOR if scenes else None


def bundled_generators() -> list[str]:
    """The names of the generators that ship inside the package (default64, ...)."""
    return sorted(p.name.removesuffix(".safetensors") for p in MODELS.glob("*.safetensors")
                  if not p.name.endswith(".directions.safetensors"))


def resolve_checkpoint(checkpoint=None) -> Path:
    """--checkpoint as a user gives it: a weights file, a bundled generator's name
    (`celeba64`), or nothing (None) for the bundled default."""
    if checkpoint is None:
        return default_checkpoint()
    check_checkpoint_text(checkpoint)
    name = str(checkpoint)
    if Path(name).exists() or "/" in name or "\\" in name or name.endswith(".safetensors"):
        return Path(name)
    if name in bundled_generators():
        return MODELS / f"{name}.safetensors"
    raise SynthfaceError(f"--checkpoint {name}: no such file, nor a bundled generator "
                         f"({', '.join(bundled_generators()) or 'none in this install'})")


def check_checkpoint_text(checkpoint) -> None:
    """--checkpoint "" (an unset shell variable, say) is a mistake, not the default."""
    if checkpoint is not None and not str(checkpoint).strip():
        names = ", ".join(bundled_generators()) or "none here"
        raise SynthfaceError(f"--checkpoint {str(checkpoint)!r} is empty: give a generator's weights file "
                             f"(.safetensors) or a bundled generator's name ({names}), or leave --checkpoint out "
                             "for the default")


def default_checkpoint() -> Path:
    """The generator that ships inside the package (see synthface/models/MODEL_CARD.md)."""
    if not DEFAULT_CHECKPOINT.is_file():
        raise SynthfaceError("no generator: pass --checkpoint G.safetensors (this install has no bundled "
                             f"generator at {DEFAULT_CHECKPOINT})")
    return DEFAULT_CHECKPOINT


def open_sampler(checkpoint=None, replay_faces=None, device: str = "auto", resolution: int = 64, targets=None):
    """The --checkpoint generator, the bundled default, or the replay stand-in;
    `targets` (steering.Target list) steers a generator's pose and expression."""
    check_checkpoint_text(checkpoint)
    if replay_faces is not None and not str(replay_faces).strip():  # an unset variable: not the generator
        raise SynthfaceError(f"--replay-faces {str(replay_faces)!r} is empty: give a folder of face images")
    if replay_faces:
        if targets:
            raise SynthfaceError("--yaw, --pitch, --mouth-open and --pose-mix steer a generator, not --replay-faces")
        return ReplaySampler(replay_faces, resolution)
    return GeneratorSampler(resolve_checkpoint(checkpoint), device, targets)


def candidates(sampler, seed: int, start: int, count: int | None, num_shards: int = 1, shard_index: int = 0):
    """Yield (j, seed_j, image) for candidates start, start+1, ... (count of them, or
    without end when count is None), generating whole aligned blocks. With shards, only
    the blocks b with b % num_shards == shard_index (count then bounds j, not yields)."""
    j = start
    end = None if count is None else start + count
    while end is None or j < end:
        block = j - j % BLOCK
        if (block // BLOCK) % num_shards != shard_index:
            j = block + BLOCK
            continue
        seeds = [candidate_seed(seed, k) for k in range(block, block + BLOCK)]
        images = sampler.images(seeds)
        for k in range(j, block + BLOCK):
            if end is not None and k >= end:
                return
            yield k, seeds[k - block], images[k - block]
        j = block + BLOCK


def sampler_from_spec(spec):
    """Rebuild a sampler from its spec() in another process (CPU, one torch thread)."""
    if spec[0] == "replay":
        return ReplaySampler(spec[1], spec[2])
    import torch

    torch.set_num_threads(1)
    return GeneratorSampler(spec[1], device="cpu", targets=spec[2])


def candidate_seeds(seed: int, start: int, num_shards: int = 1, shard_index: int = 0):
    """Yield (j, seed_j) in the order `candidates` does, without making images."""
    j = start
    while True:
        block = j - j % BLOCK
        if (block // BLOCK) % num_shards != shard_index:
            j = block + BLOCK
            continue
        yield j, candidate_seed(seed, j)
        j += 1


def images_for(sampler, seed: int, js) -> np.ndarray:
    """The images of candidates js (ascending), each generated with its whole block."""
    out, block, images = [], None, None
    for j in js:
        b = j - j % BLOCK
        if b != block:
            block, images = b, sampler.images([candidate_seed(seed, k) for k in range(b, b + BLOCK)])
        out.append(images[j - b])
    return np.stack(out)


def remake(sampler, seed: int, j: int) -> np.ndarray:
    """Candidate j's image exactly as a dataset run made it."""
    return next(candidates(sampler, seed, j, 1))[2]
