import numpy as np
import pytest

from conftest import FACES
from synthface.generator.evaluate import close_pair_share, evaluate, format_report, frechet_distance, nearest_distances
from synthface.generator.sampling import GeneratorSampler, ReplaySampler


@pytest.fixture(scope="module")
def tiny_sampler(tmp_path_factory):
    from synthface.generator.config import load_config
    from synthface.generator.networks import arch_of, build_generator
    from synthface.generator.weights import save_generator

    arch = arch_of(load_config("tiny").model)
    path = tmp_path_factory.mktemp("g") / "tiny.safetensors"
    save_generator(build_generator(arch).eval(), arch, path)
    return GeneratorSampler(path, device="cpu")


def test_untrained_generator_scores_worse_than_real_faces(tiny_sampler):
    r = evaluate(tiny_sampler, FACES, n=8, workers=0, cache_dir="", progress=False)
    assert r["n_generated"] == 8 and r["n_real"] == 16 and r["real_split"] == 8
    for key in ("detection_yield", "detection_yield_real", "memorised_share", "memorised_share_heldout_real",
                "diversity_close_pair_share", "diversity_close_pair_share_real"):
        assert 0.0 <= r[key] <= 1.0, key
    assert r["detection_yield"] == 0.0  # random weights draw no face
    assert r["ffd"] >= 0 and r["ffd_real_vs_real"] >= 0
    assert r["ffd_real_vs_real"] < r["ffd"]
    assert r["memorised_share"] == 0.0
    assert r["diversity_close_pair_share"] > r["diversity_close_pair_share_real"]  # noise looks alike
    assert "Fréchet face distance" in format_report(r)


def test_a_sampler_that_replays_training_faces_is_all_memorised():
    r = evaluate(ReplaySampler(FACES, 64), FACES, n=8, workers=1, cache_dir="", progress=False)
    assert r["memorised_share_all_training"] == 1.0 and r["memorised_share_heldout_real"] < 0.5
    assert r["memorised_share_calibrated"] >= 3 / 8  # the replayed copies of half A's faces
    assert r["detection_yield"] == 1.0  # the fixtures were chosen as faces dlib finds at 64 px
    # replayed faces are exact copies or mirror images of training faces: near, not all 0
    assert r["nearest_real_distance_mean"] < 0.2 < r["nearest_real_distance_mean_heldout"]


def test_frechet_distance_known_values():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 8))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.zeros(8)
    shift[:2] = [3.0, 4.0]
    assert frechet_distance(a, a + shift) == pytest.approx(25.0, rel=1e-6)
    # N(0, I) vs N(0, 4I) in 8-D: 8 * (1 + 4 - 2 * 2) = 8
    assert frechet_distance(rng.normal(size=(20000, 8)), 2 * rng.normal(size=(20000, 8))) == pytest.approx(8.0, rel=0.05)


def test_nearest_and_pairs():
    x = np.array([[0.0, 0.0], [0.5, 0.0], [3.0, 0.0], [3.0, 0.4]], np.float32)
    assert nearest_distances(x[:2], x[2:]).tolist() == pytest.approx([3.0, 2.5])
    assert close_pair_share(x) == pytest.approx(2 / 6)  # (0,1) and (2,3) of 6 pairs
