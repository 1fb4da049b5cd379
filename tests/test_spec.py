"""GenerationSpec: every invalid setting is refused with the message a user will read."""

from __future__ import annotations

import pytest

from sdaudit.generation.spec import MAX_SEED, GenerationSpec, parse_seed_range

VALID = dict(model="demo", prompt="a doctor sitting behind a desk", first_seed=0, last_seed=7)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"prompt": ""}, "`prompt` must be a non-empty text but is ''."),
        ({"prompt": "   "}, "`prompt` must be a non-empty text but is '   '."),
        ({"model": ""}, "`model` must be a non-empty text but is ''."),
        ({"study": " "}, "`study` must be a non-empty text but is ' '."),
        ({"first_seed": 7, "last_seed": 0},
         "the seed range 7-0 is empty: the first seed must not be above the last (e.g. 0-7)."),
        ({"first_seed": -1, "last_seed": 3}, "seeds must be whole numbers from 0 to 9007199254740991, but the range is -1-3."),
        # one limit for every face: what a browser's number input holds exactly
        ({"first_seed": 0, "last_seed": 2**53},
         f"seeds must be whole numbers from 0 to 9007199254740991, but the range is 0-{2**53}."),
        ({"first_seed": 1.5}, "seeds must be whole numbers from 0 to 9007199254740991, but the range is 1.5-7."),
        ({"study": "../../escaped"},
         "a study name must be 1 to 64 letters, digits, spaces, '-', '_' or '.', starting with a letter, digit or '_', "
         "but is '../../escaped'."),
        ({"batch_size": 0}, "`batch_size` must be a whole number from 1 to 64 but is 0."),
        ({"batch_size": 65}, "`batch_size` must be a whole number from 1 to 64 but is 65."),
        ({"steps": 0}, "`steps` must be a whole number from 1 to 1000 but is 0."),
        ({"steps": True}, "`steps` must be a whole number from 1 to 1000 but is True."),
        ({"guidance": -1.0}, "`guidance` must be a finite number from 0 to 50 but is -1.0."),
        ({"guidance": float("nan")}, "`guidance` must be a finite number from 0 to 50 but is nan."),
        ({"height": 500}, "`height` and `width` have to be divisible by 8 and between 8 and 4096 but are 500 and 512."),
        ({"width": 0}, "`height` and `width` have to be divisible by 8 and between 8 and 4096 but are 512 and 0."),
        ({"scheduler": "heun"},
         "`scheduler` must be one of pndm, ddim, euler, euler-ancestral, dpmsolver++, lms, unipc but is 'heun'."),
        ({"dtype": "int8"}, "`dtype` must be one of auto, float16, bfloat16, float32 but is 'int8'."),
        ({"device": "tpu"}, "`device` must be one of auto, cuda, mps, cpu but is 'tpu'."),
        ({"safety_checker": "yes"}, "`safety_checker` must be true or false but is 'yes'."),
        ({"revision": ""}, "`revision` must be a non-empty text but is ''."),
    ],
)
def test_invalid_specs_are_refused_with_their_message(changes, message):
    with pytest.raises(ValueError) as caught:
        GenerationSpec(**{**VALID, **changes})
    assert str(caught.value) == message


def test_defaults_are_the_origin_studys_settings():
    spec = GenerationSpec(first_seed=0, last_seed=0)
    assert (spec.model, spec.scheduler, spec.steps, spec.guidance) == ("CompVis/stable-diffusion-v1-4", "pndm", 50, 7.5)
    assert (spec.height, spec.width, spec.safety_checker) == (512, 512, False)
    assert spec.prompt == "a doctor sitting behind a desk"


def test_seeds_are_an_inclusive_range():
    assert list(GenerationSpec(**{**VALID, "first_seed": 3, "last_seed": 5}).seeds) == [3, 4, 5]


@pytest.mark.parametrize(("text", "expected"), [("0-7", (0, 7)), (" 3-3 ", (3, 3)), ("12", (12, 12)), ("7-0", (7, 0))])
def test_seed_ranges_parse(text, expected):
    assert parse_seed_range(text) == expected


@pytest.mark.parametrize("text", ["", "a-b", "1-2-3", "-3", "1..4", "0-", "²-3", "٣"])
def test_malformed_seed_ranges_are_named(text):
    with pytest.raises(ValueError) as caught:
        parse_seed_range(text)
    assert str(caught.value) == (
        "`--seeds` must look like A-B with whole numbers written in the digits 0-9 (e.g. 0-7) or a single seed, "
        f"but is {text!r}."
    )


def test_the_largest_seed_is_one_a_browser_number_holds():
    assert MAX_SEED == 2**53 - 1
    assert GenerationSpec(**{**VALID, "first_seed": MAX_SEED, "last_seed": MAX_SEED}).seeds == range(MAX_SEED, MAX_SEED + 1)
