"""The command line's option lists and defaults are the library's: each test fails when
one side changes without the other (the options take what they can from the library's
constants; the rest, behind torch imports, are repeated and checked here)."""

import dataclasses
import inspect

import pytest

from srgan_cli.cli import main, options
from srgan_cli.cli import train as train_cli
from srgan_cli.inference import runner as upscale
from srgan_cli.nets.generator import TIE_MODES, GeneratorSpec
from srgan_cli.train import config
from srgan_cli.train.config import TrainConfig


def option(command: str, name: str):
    """The click parameter ``name`` of ``srgan COMMAND`` (``models export``: two words)."""
    cmd = main
    for word in command.split():
        cmd = cmd.commands[word]
    return next(p for p in cmd.params if p.name == name)


def choices(command: str, name: str) -> tuple:
    return tuple(option(command, name).type.choices)


def parsed_config(*args: str) -> TrainConfig:
    """The TrainConfig ``srgan train --data d ARGS`` trains, through the command's own
    option handling (nothing run)."""
    cmd = main.commands["train"]
    ctx = cmd.make_context("train", ["--data", "d", *args])
    opts = {k: v for k, v in ctx.params.items() if k not in ("resume", "export_path")}
    return TrainConfig(**train_cli._fields(**opts))


@pytest.mark.parametrize("stage", config.STAGES)
def test_srgan_train_without_options_trains_what_a_default_train_config_does(stage):
    assert parsed_config("--stage", stage) == TrainConfig(data=["d"], stage=stage)


def test_every_train_config_field_is_an_option_with_the_fields_default():
    params = {train_cli._FIELD_OF_OPTION.get(p.name, p.name): p
              for p in main.commands["train"].params}
    for f in dataclasses.fields(TrainConfig):
        assert f.name in params, f"TrainConfig.{f.name} has no srgan train option"
        if f.default is not dataclasses.MISSING and f.default is not None:
            assert type(f.default)(params[f.name].default) == f.default, f.name


def test_training_choices_are_the_training_modules_constants():
    assert choices("train", "stage") == config.STAGES
    assert choices("train", "content_loss") == config.CONTENT_LOSSES
    assert choices("train", "lr_schedule") == config.LR_SCHEDULES
    assert choices("train", "tie_phases") == TIE_MODES
    for schedule in config.LR_SCHEDULES:  # each one trains
        config.lr_at(TrainConfig(data=[], lr_schedule=schedule, iters=10), 5)


def test_the_scale_choices_are_the_scales_the_generator_builds():
    def builds(scale: int) -> bool:
        try:
            GeneratorSpec(scale=scale)
        except ValueError:
            return False
        return True

    assert {int(s) for s in choices("train", "scale")} == {s for s in range(1, 33) if builds(s)}


@pytest.mark.parametrize("command", ["upscale", "benchmark", "train"])
def test_precision_device_and_kernel_options_are_the_upscalers(command):
    defaults = inspect.signature(upscale.Runner).parameters
    assert choices(command, "precision") == upscale.PRECISIONS
    assert option(command, "device").default == defaults["device"].default
    if command != "train":
        assert choices(command, "kernels") == upscale.KERNELS
        assert option(command, "precision").default == defaults["precision"].default
        assert option(command, "kernels").default == defaults["kernels"].default


@pytest.mark.parametrize("command", ["upscale", "benchmark", "models export"])
def test_every_border_option_is_the_upscalers(command):
    assert choices(command, "border") == upscale.BORDERS
    assert option(command, "border").default == upscale.DEFAULT_BORDER
    assert f"by {upscale.MIRROR_PAD} LR px" in option(command, "border").help
    assert options.MIRROR_PAD == upscale.MIRROR_PAD


def test_the_stage_defaults_in_the_train_help_are_the_configs():
    help_text = " ".join(p.help or "" for p in main.commands["train"].params)
    for stage, defaults in config.STAGE_DEFAULTS.items():
        assert f"{defaults['iters']:,} ({stage})" in help_text
        assert f"{defaults['content_loss']} ({stage})" in help_text
        assert f"{defaults['lr_schedule']} ({stage})" in help_text


def test_the_export_weights_choices_are_the_exporters():
    from srgan_cli.train.export import WEIGHTS

    assert choices("models export", "which") == WEIGHTS

