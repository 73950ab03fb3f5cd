"""Stage-1 autoencoders, the denoiser family and the schedule."""

import math

import pytest
import torch

from specdm.models.autoencoders import SpectralAutoencoder
from specdm.models.denoisers import build_denoiser
from specdm.models.losses import kl_divergence, spectral_angle
from specdm.schedulers import SAMPLERS, sampling_scheduler, training_scheduler

TINY = dict(block_out_channels=(8, 16, 16), norm_num_groups=8)


def test_spectral_angle_identical_orthogonal_scaled():
    a = torch.tensor([[1.0, 2.0, 3.0], [1.0, 0.0, 0.0]]).T.unsqueeze(0)  # (1, C=3, 2 pixels)
    b = torch.tensor([[2.0, 4.0, 6.0], [0.0, 1.0, 0.0]]).T.unsqueeze(0)
    sad = spectral_angle(a, b)
    assert sad[0, 0].item() == pytest.approx(0.0, abs=2e-3)  # scaled copy
    assert sad[0, 1].item() == pytest.approx(math.pi / 2, abs=1e-5)  # orthogonal


def test_kl_is_zero_for_standard_normal():
    assert kl_divergence(torch.zeros(2, 4, 3, 3), torch.zeros(2, 4, 3, 3)).item() == 0
    assert kl_divergence(torch.ones(2, 4, 3, 3), torch.zeros(2, 4, 3, 3)).item() == pytest.approx(18.0)


def test_training_schedule_is_the_papers():
    s = training_scheduler()
    assert s.config.num_train_timesteps == 1000
    assert s.betas[0].item() == pytest.approx(0.0015)
    assert s.betas[-1].item() == pytest.approx(0.0155)
    assert torch.allclose(s.betas[1:] - s.betas[:-1], torch.full((999,), 0.014 / 999), atol=1e-7)


@pytest.mark.parametrize("name", SAMPLERS)
def test_samplers_use_the_training_schedule(name):
    s = sampling_scheduler(name, {})
    assert s.betas[0].item() == pytest.approx(0.0015) and s.betas[-1].item() == pytest.approx(0.0155)
    s.set_timesteps(10)
    assert len(s.timesteps) == 10


@pytest.mark.parametrize("kind", ["two_stream", "single_stream"])
@pytest.mark.parametrize("dates", [1, 2])
def test_latent_layout(kind, dates):
    """z = [z_x1, (z_x2,) z_y], c channels each at f = 4; each part is its own encoder's output."""
    c = 3
    ae = SpectralAutoencoder(kind, num_bands=13, num_classes=5, num_dates=dates, latent_channels=c, **TINY).eval()
    x, y = torch.rand(2, dates, 13, 16, 16), torch.randint(0, 5, (2, 16, 16))
    with torch.no_grad():
        mean, logvar = ae.encode(x, y)
        images, logits = ae.decode(mean)
        assert mean.shape == (2, (dates + 1) * c, 4, 4) == logvar.shape and ae.downsampling == 4
        assert images.shape == x.shape and logits.shape == (2, 5, 16, 16)
        if kind == "two_stream":
            for t in range(dates):
                direct = ae.image_vae.encode(x[:, t]).latent_dist.mean
                assert torch.allclose(mean[:, t * c : (t + 1) * c], direct, atol=1e-6)
                assert torch.allclose(images[:, t], ae.image_vae.decode(mean[:, t * c : (t + 1) * c]).sample, atol=1e-6)
            assert torch.allclose(mean[:, dates * c :], ae.mask_vae.encode(ae.one_hot(y)).latent_dist.mean, atol=1e-6)
        else:
            joint = ae.joint_vae.encode(torch.cat([x.flatten(1, 2), ae.one_hot(y)], 1)).latent_dist.mean
            assert torch.equal(mean, joint)
            out = ae.joint_vae.decode(mean).sample
            assert torch.equal(images.flatten(1, 2), out[:, : dates * 13]) and torch.equal(logits, out[:, dates * 13 :])


def test_two_stream_parts_are_independent():
    """The image half of z depends only on the image, the mask half only on the mask; dates share one encoder."""
    ae = SpectralAutoencoder("two_stream", 6, 3, num_dates=2, latent_channels=2, **TINY).eval()
    x, y = torch.rand(1, 2, 6, 16, 16), torch.randint(0, 3, (1, 16, 16))
    m1, _ = ae.encode(x, y)
    m2, _ = ae.encode(x, (y + 1) % 3)
    assert torch.equal(m1[:, :4], m2[:, :4]) and not torch.equal(m1[:, 4:], m2[:, 4:])
    swapped, _ = ae.encode(x.flip(1), y)  # swapping the dates swaps z_x1 and z_x2
    assert torch.allclose(swapped[:, :2], m1[:, 2:4], atol=1e-6)


@pytest.mark.parametrize("kind", ["two_stream", "single_stream"])
def test_autoencoder_save_load_round_trip(tmp_path, kind):
    """diffusers' save_pretrained/from_pretrained: config.json + safetensors, the same weights back."""
    ae = SpectralAutoencoder(kind, 7, 4, **TINY).eval()
    ae.save_pretrained(tmp_path / "ae")
    assert (tmp_path / "ae" / "config.json").is_file() and list((tmp_path / "ae").glob("*.safetensors"))
    back = SpectralAutoencoder.from_pretrained(tmp_path / "ae")
    x, y = torch.rand(1, 1, 7, 16, 16), torch.randint(0, 4, (1, 16, 16))
    assert torch.equal(ae.encode(x, y)[0], back.encode(x, y)[0])
    public = lambda c: {k: list(v) if isinstance(v, tuple) else v for k, v in c.items() if not k.startswith("_")}  # noqa: E731
    assert public(back.config) == public(ae.config) and not back.training


def test_autoencoder_loads_the_earlier_per_stream_format(tmp_path):
    """Model folders written before the ModelMixin move (autoencoder.json + one folder per stream) still load."""
    import json

    ae = SpectralAutoencoder("two_stream", 5, 3, **TINY).eval()
    for name in ("image_vae", "mask_vae"):
        getattr(ae, name).save_pretrained(tmp_path / "old" / name)
    cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in ae.config.items() if not k.startswith("_")}
    (tmp_path / "old" / "autoencoder.json").write_text(json.dumps(cfg))
    back = SpectralAutoencoder.from_pretrained(tmp_path / "old")
    x, y = torch.rand(1, 1, 5, 16, 16), torch.randint(0, 3, (1, 16, 16))
    assert torch.equal(ae.encode(x, y)[0], back.encode(x, y)[0])


def test_loading_a_folder_without_a_model_names_it(tmp_path):
    from specdm.errors import CheckpointError

    with pytest.raises(CheckpointError, match="config.json missing") as e:
        SpectralAutoencoder.from_pretrained(tmp_path)
    assert str(tmp_path) in str(e.value)


def test_denoiser_predicts_noise_of_the_latent_shape_and_depends_on_t():
    unet = build_denoiser(8, 8, (32, 64), layers_per_block=1)
    torch.nn.init.normal_(unet.conv_out.weight, std=0.1)  # diffusers zero-initialises nothing here; make sure
    z = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        a = unet(z, torch.tensor([10, 10]), encoder_hidden_states=None).sample
        b = unet(z, torch.tensor([900, 900]), encoder_hidden_states=None).sample
    assert a.shape == z.shape and torch.isfinite(a).all()
    assert not torch.allclose(a, b)  # the timestep embedding reaches the output
    assert unet.config.in_channels == unet.config.out_channels == 8 and unet.config.sample_size == 8


def test_mask_loss_leaves_out_unlabelled_pixels_when_asked():
    from specdm.models.losses import mask_loss

    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 1] = 5.0  # confident "class 1" everywhere
    mask = torch.tensor([[[1, 1], [0, 0]]])
    ignored, _ = mask_loss(logits, mask, None, ignore_index=0)
    counted, _ = mask_loss(logits, mask, None, ignore_index=None)
    p1 = torch.softmax(torch.tensor([0.0, 5.0, 0.0]), 0)
    assert ignored.item() == pytest.approx(-math.log(p1[1].item()), rel=1e-5)  # only the two class-1 pixels
    assert counted.item() == pytest.approx(0.5 * (-math.log(p1[1].item()) - math.log(p1[0].item())), rel=1e-5)


def test_class_weights_are_inverse_sqrt_frequency():
    import numpy as np

    from specdm.data.datamodule import PatchSet
    from specdm.data.windows import Window
    from specdm.training.autoencoder import class_weights

    mask = np.zeros((4, 4), np.int64)
    mask[:, 2:] = 1
    mask[0, 0] = 2  # counts: class 0 -> 7, 1 -> 8, 2 -> 1
    ps = PatchSet([np.zeros((1, 1, 4, 4), np.float32)], [mask], [Window(0, 0, 0)], 4)
    w = class_weights(ps, 3, ignore_index=0).numpy()
    assert w[0] == 0
    assert w[2] / w[1] == pytest.approx(math.sqrt(8))
    assert w[1:].mean() == pytest.approx(1.0)


