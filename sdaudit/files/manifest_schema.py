"""The JSON Schema of a run folder's ``manifest.json`` and part-file lines, and the one check that
applies it: every field's type, range, length and size, no field the format does not name.

A run folder comes from another process or another machine, so nothing in it is trusted: a seed
``-5``, a prompt ``123`` or ``versions: "zz"`` is refused with one line naming the field and the
value given, before anything is written. Each leaf's ``description`` is the rule as that line
says it ("a whole number from 0 to …"). JSON's ``1.0`` is not a whole number here (jsonschema's
own ``integer`` takes it), and ``true`` is not a number.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match

from sdaudit.config import DEVICES, DTYPES
from sdaudit.errors import RunFolderError
from sdaudit.generation.spec import MAX_BATCH_SIZE, MAX_SEED, MAX_SIDE, MAX_STEPS, MAX_TEXT, MODES, SCHEDULERS
from sdaudit.records import MAX_STUDY_NAME, ImageRecord, RunRecord

MAX_NAME = 200  # characters of a device, a version, a timestamp (sdaudit writes them)
MAX_VERSIONS = 50
MAX_ITEMS = 10_000_000  # images or runs in one manifest
MAX_SHOWN = 60  # characters of a refused text quoted in the error

FIELD = "{where}: {field} must be {rule} but is {value}."
UNKNOWN = "{where}: {field} has the field {name}, which the run folder format does not name."
LACKS = "{where}: {field} lacks the field {name!r}."

# What a user may type (a prompt, a model, a revision, a slot): any text without NUL, as
# ``check_spec`` accepts it. What sdaudit itself writes (a device, a version, a path): one line
# without control characters.
_TEXT = r"\A[^\x00]*\Z"
_LINE = r"\A[^\x00-\x1f\x7f-\x9f]*\Z"


def _whole(low: int, high: int, *, null: bool = False) -> dict:
    rule = f"a whole number from {low} to {high}" + (" or null" if null else "")
    return {"type": ["integer", "null"] if null else "integer", "minimum": low, "maximum": high, "description": rule}


def _text(max_length: int, *, null: bool = False, empty: bool = True, one_line: bool = False) -> dict:
    rule = (f"a text of {0 if empty else 1} to {max_length} characters "
            + ("on one line without control characters" if one_line else "without NUL") + (" or null" if null else ""))
    return {"type": ["string", "null"] if null else "string", "minLength": 0 if empty else 1,
            "maxLength": max_length, "pattern": _LINE if one_line else _TEXT, "description": rule}


def _one_of(choices: Iterable[str]) -> dict:
    choices = list(choices)
    return {"enum": choices, "description": "one of " + ", ".join(choices)}


_RUN_KEY = {"type": "string", "pattern": r"\A[A-Za-z0-9_-]{1,64}\Z",
            "description": "1 to 64 letters, digits, '-' or '_'"}
_SIDE = {"type": "integer", "minimum": 8, "maximum": MAX_SIDE, "multipleOf": 8,
         "description": f"a whole number from 8 to {MAX_SIDE} divisible by 8"}
_BOOLEAN = {"type": "boolean", "description": "true or false"}
_VERSIONS = {
    "type": "object", "maxProperties": MAX_VERSIONS,
    "propertyNames": {"pattern": r"\A[A-Za-z0-9_.-]{1,64}\Z",
                      "description": "a library name of 1 to 64 letters, digits, '.', '-' or '_'"},
    "additionalProperties": _text(MAX_NAME, one_line=True),
    "description": f"an object of at most {MAX_VERSIONS} library names (letters, digits, '.', '-', '_') "
                   "with their versions as texts",
}

RUN = {
    "type": "object", "description": "an object describing a run",
    "properties": {
        "run_key": _RUN_KEY,
        # the name's rule is require_new_study's, applied by ingest (a store may hold an older name)
        "study": _text(MAX_STUDY_NAME * 4, empty=False, one_line=True),
        "model": _text(MAX_TEXT, empty=False),
        "model_revision": _text(MAX_TEXT, null=True),
        "pipeline_class": _text(MAX_TEXT, null=True),
        "prompt": _text(MAX_TEXT, empty=False),
        "negative_prompt": _text(MAX_TEXT),
        "scheduler": _one_of(SCHEDULERS),
        "steps": _whole(1, MAX_STEPS),
        "guidance": {"type": "number", "minimum": 0, "maximum": 50, "description": "a number from 0 to 50"},
        "width": _SIDE,
        "height": _SIDE,
        "dtype": _one_of(dtype for dtype in DTYPES if dtype != "auto"),
        "device": _text(MAX_NAME, null=True, one_line=True),
        "batch_size": _whole(1, MAX_BATCH_SIZE, null=True),
        "safety_checker": _BOOLEAN,
        "versions": _VERSIONS,
        "slot": _text(MAX_TEXT, null=True),
        "kind": _one_of(["generated"]),  # a run folder holds generated runs only
    },
    # a folder written before `slot` or `kind` has none
    "required": [f.name for f in fields(RunRecord) if f.name not in ("slot", "kind")],
    "additionalProperties": False,
}

IMAGE = {
    "type": "object", "description": "an object describing an image",
    "properties": {
        "run_key": _RUN_KEY,
        "seed": _whole(0, MAX_SEED),
        "path": _text(MAX_NAME + 100, empty=False, one_line=True),
        "sha256": {"type": "string", "pattern": r"\A[0-9a-f]{64}\Z", "description": "64 hexadecimal digits (0-9, a-f)"},
        "nsfw": {"type": ["boolean", "null"], "description": "true, false or null"},
        "seconds": {"type": ["number", "null"], "minimum": 0, "maximum": 10**7,
                    "description": "a number of seconds from 0 to 10000000 or null"},
        "batch_size": _whole(1, MAX_BATCH_SIZE, null=True),
        "device": _text(MAX_NAME, null=True, one_line=True),
    },
    "required": [f.name for f in fields(ImageRecord)],
    "additionalProperties": False,
}

SPEC = {
    "type": ["object", "null"], "description": "a generation spec",
    "properties": {
        "model": _text(MAX_TEXT, empty=False),
        "prompt": _text(MAX_TEXT, empty=False),
        "negative_prompt": _text(MAX_TEXT),
        "first_seed": _whole(0, MAX_SEED),
        "last_seed": _whole(0, MAX_SEED),
        "batch_size": _whole(1, MAX_BATCH_SIZE),
        "steps": _whole(1, MAX_STEPS),
        "guidance": RUN["properties"]["guidance"],
        "height": _SIDE,
        "width": _SIDE,
        "scheduler": _one_of(SCHEDULERS),
        "safety_checker": _BOOLEAN,
        "dtype": _one_of(DTYPES),
        "device": _one_of(DEVICES),
        "revision": _text(MAX_TEXT, null=True),
        "study": RUN["properties"]["study"],
        "slot": _text(MAX_TEXT, null=True),
        "mode": _one_of(MODES),  # a folder written before modes has none
    },
    "additionalProperties": False,
}

MANIFEST_SCHEMA = {
    "type": "object", "description": "an object",
    "properties": {
        "format": {"type": "string"},
        "format_version": {"type": "integer"},
        "written_by": _text(MAX_NAME, one_line=True),
        "written_at": _text(MAX_NAME, one_line=True),
        "specs": {"type": "array", "maxItems": 10_000, "items": SPEC, "description": "a list of at most 10000 specs"},
        "runs": {"type": "array", "maxItems": MAX_ITEMS, "items": RUN,
                 "description": f"a list of at most {MAX_ITEMS} runs"},
        "images": {"type": "array", "maxItems": MAX_ITEMS, "items": IMAGE,
                   "description": f"a list of at most {MAX_ITEMS} images"},
    },
    "required": ["format", "format_version", "runs", "images"],
    "additionalProperties": False,
}

# One line of a part file: a run (with the spec that made it) or an image.
PART_LINE_SCHEMA = {
    "type": "object", "description": "an object with a run or an image",
    "oneOf": [{"required": ["run"]}, {"required": ["image"]}],
    "properties": {"run": RUN, "spec": SPEC, "image": IMAGE},
    "additionalProperties": False,
}


def _is_whole(checker, instance) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = validators.extend(Draft202012Validator,
                               type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_whole))
_MANIFEST = _Validator(MANIFEST_SCHEMA)
_PART_LINE = _Validator(PART_LINE_SCHEMA)


def shown(value: object) -> str:
    """A refused value as an error line quotes it: short, on one line, never a whole nested list."""
    if isinstance(value, list):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        return f"an object with {len(value)} field{'' if len(value) == 1 else 's'}"
    if isinstance(value, str):
        return repr(value if len(value) <= MAX_SHOWN else value[:MAX_SHOWN] + "…")
    return "null" if value is None else "true" if value is True else "false" if value is False else repr(value)


def _field(path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the manifest"


def _message(error: ValidationError, where: str) -> str:
    field = _field(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        name = next(name for name in error.instance if name not in allowed)
        return UNKNOWN.format(where=where, field=field, name=shown(name))
    if error.validator == "required":
        name = next(name for name in error.validator_value if name not in error.instance)
        return LACKS.format(where=where, field=field, name=name)
    rule = error.schema.get("description", f"valid ({error.validator} {error.validator_value})")
    return FIELD.format(where=where, field=field, rule=rule, value=shown(error.instance))


def _check(validator, document: object, where: str) -> None:
    error = best_match(validator.iter_errors(document))
    if error is not None:
        raise RunFolderError(_message(error, where))


def check_manifest(manifest: object, where: str) -> None:
    """Nothing, when ``manifest`` (parsed JSON) fits ``MANIFEST_SCHEMA``; else ``RunFolderError``
    naming the first field that does not and the value given."""
    _check(_MANIFEST, manifest, where)


def check_part_line(entry: object, where: str) -> None:
    """As ``check_manifest``, for one line of a part file."""
    _check(_PART_LINE, entry, where)
