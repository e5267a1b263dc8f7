"""Which language an asset is spoken in, and which engine an agent uses for a language.

Why pure and here: the server decides the language of each transcription job (so that it
only offers the job to an agent that can do it), the agent decides which engine handles a
language; both read the same `[transcription]` section.  Contract: docs/processing.md,
"Transcription".

An asset's language is, in order: the per-asset choice made in the UI, the first
`language_rules` entry whose glob matches its library-relative path, `default_language`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: ISO 639-1/639-3 code, optionally with a region or variant ("en", "pt-br", "yue").
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")
#: Field of `Asset.fields_data` that holds the per-asset choice made in the UI.
LANGUAGE_FIELD = "language"
#: Engine spec of the zero-download English engine (the pocketsphinx wheel's model).
BUILTIN_ENGLISH = "pocketsphinx:en-us"
#: What an agent older than language routing advertises: it takes any language.
ANY_LANGUAGE = "*"


def check_language(value: str) -> str:
    """A normalised language code, or ValueError with the rule."""
    code = value.strip().lower().replace("_", "-")
    if not LANGUAGE_RE.match(code):
        raise ValueError(
            f"{value!r} is not a language code (two or three letters, e.g. 'en', 'ko', 'pt-br')"
        )
    return code


class LanguageRule(BaseModel):
    """`{ glob = "INBOX/Seoul/**", language = "ko" }`: the language of matching paths."""

    model_config = ConfigDict(extra="forbid")

    glob: str = Field(min_length=1)
    language: str

    @field_validator("language")
    @classmethod
    def _language_ok(cls, value: str) -> str:
        return check_language(value)


class TranscriptionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    #: Language of an asset that no per-asset choice and no rule names.
    default_language: str = "en"
    #: Language -> "engine:model" on the agents; engines: pocketsphinx, vosk, whispercpp.
    models: dict[str, str] = Field(default_factory=lambda: {"en": BUILTIN_ENGLISH})
    #: First match wins; globs are library-relative ("INBOX/Seoul/**").
    language_rules: list[LanguageRule] = Field(default_factory=list)

    @field_validator("default_language")
    @classmethod
    def _default_ok(cls, value: str) -> str:
        return check_language(value)

    @field_validator("models")
    @classmethod
    def _models_ok(cls, value: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for language, spec in value.items():
            engine, sep, model = spec.partition(":")
            if not sep or not engine.strip() or not model.strip():
                raise ValueError(
                    f"models.{language}: {spec!r} is not 'engine:model' "
                    "(e.g. 'pocketsphinx:en-us', 'vosk:/opt/vosk-model-small-fr-0.22')"
                )
            out[check_language(language)] = f"{engine.strip().lower()}:{model.strip()}"
        return out


def glob_match(pattern: str, rel_path: str) -> bool:
    """Shell-style match on '/'-separated paths: `*` stays in one folder, `**` spans any.

    Case-insensitive, since folder names on NAS shares are typed by hand."""
    regex = ["^"]
    i = 0
    pat = pattern.strip("/").lower()
    while i < len(pat):
        if pat.startswith("**/", i):
            regex.append("(?:.*/)?")
            i += 3
        elif pat.startswith("**", i):
            regex.append(".*")
            i += 2
        elif pat[i] == "*":
            regex.append("[^/]*")
            i += 1
        elif pat[i] == "?":
            regex.append("[^/]")
            i += 1
        else:
            regex.append(re.escape(pat[i]))
            i += 1
    regex.append("$")
    return re.match("".join(regex), rel_path.strip("/").lower()) is not None


def asset_language(
    rel_path: str, fields_data: Mapping[str, Any] | None, config: TranscriptionConfig
) -> str:
    """The language to transcribe this asset in: UI choice, then rules, then the default."""
    chosen = (fields_data or {}).get(LANGUAGE_FIELD)
    if isinstance(chosen, str) and chosen.strip():
        try:
            return check_language(chosen)
        except ValueError:
            pass  # a hand-edited value that is not a code: fall through to the rules
    for rule in config.language_rules:
        if glob_match(rule.glob, rel_path):
            return rule.language
    return config.default_language


def advertised_languages(capabilities: Mapping[str, Any] | None) -> set[str] | None:
    """Languages an agent's registration says it transcribes; None means "any" (an agent
    from before language routing, which only named its one model's language, or one that
    describes no transcription capability at all but asks for the jobs)."""
    caps = (capabilities or {}).get("transcription")
    if not isinstance(caps, Mapping):
        return None
    languages = caps.get("languages")
    if isinstance(languages, list):
        found = {str(x).lower() for x in languages}
        return None if ANY_LANGUAGE in found else found
    return None


def can_transcribe(languages: set[str] | None, language: str) -> bool:
    """Whether an agent advertising `languages` may be given a job in `language`."""
    return languages is None or language in languages


def missing_languages(wanted: Iterable[str], agents: Iterable[set[str] | None]) -> list[str]:
    """The wanted languages no agent can transcribe (for the clear message in the UI)."""
    pool = list(agents)
    return sorted({w for w in wanted if not any(can_transcribe(a, w) for a in pool)})
