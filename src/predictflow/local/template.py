"""Read template.yaml the way CloudFormation does: SAM transform, then intrinsic functions.

The SAM transform is aws-sam-translator, the library SAM itself uses. What follows it,
resolving `Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::If` and friends against the parameters and the
resources created so far, is the small part of CloudFormation the local stack needs; any
intrinsic it does not know is an error, never passed through.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

LOG = logging.getLogger("predictflow.local")
NO_VALUE: Final = object()
_SHORT_FORMS: Final = (
    "Ref",
    "Sub",
    "GetAtt",
    "If",
    "Equals",
    "Join",
    "Select",
    "Split",
    "Not",
    "And",
    "Or",
    "FindInMap",
    "Base64",
    "GetAZs",
    "ImportValue",
    "Condition",
    "Cidr",
)


class TemplateError(RuntimeError):
    """template.yaml uses something the local stack cannot reproduce."""


class LocalExtraMissing(ModuleNotFoundError):
    """The local stack's packages (the `local` extra) are not installed."""


def require_local_extra() -> None:
    """Say what to install when the local stack's packages are missing, instead of a bare
    "No module named 'moto'". The translator is only looked up: importing it is slow, and a
    cached transform does not need it."""
    missing = []
    try:
        import moto  # noqa: F401 - the import is the check
    except ModuleNotFoundError:
        missing.append("moto")
    if importlib.util.find_spec("samtranslator") is None:
        missing.append("aws-sam-translator")
    if missing:
        raise LocalExtraMissing(
            f"the local stack needs the `local` extra ({', '.join(missing)} not installed): "
            "pip install 'predictflow[local]', or `make` in a clone"
        )


class RuleFailed(TemplateError):
    """A template rule refused the parameters, as CloudFormation refuses them before a deploy."""

    def __init__(self, rule: str, description: str) -> None:
        super().__init__(f"template rule {rule} failed: {description}")
        self.rule = rule
        self.description = description


class _CfnLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML with CloudFormation's short-form tags (`!Ref X`, `!GetAtt A.B`, ...)."""


def _short_form(tag: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        if tag == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {"Ref" if tag in ("Ref", "Condition") else f"Fn::{tag}": value}

    return construct


for _tag in _SHORT_FORMS:
    _CfnLoader.add_constructor(f"!{_tag}", _short_form(_tag))


def load_template(path: Path) -> dict[str, Any]:
    document = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{path} is not a CloudFormation template")
    return document


@dataclass(frozen=True)
class TransformedTemplate:
    template: dict[str, Any]
    code_dirs: dict[str, Path]
    """Logical id of each function (and layer) -> its local code folder."""


def transform(path: Path, region: str) -> TransformedTemplate:
    """Expand the SAM resources into plain CloudFormation, keeping the local code paths."""
    template = load_template(path)
    root = path.parent
    code_dirs: dict[str, Path] = {}
    for name, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
                code_dirs[name] = root / properties[key]
                properties[key] = f"s3://predictflow-local-code/{name}"
        if isinstance(properties.get("DefinitionUri"), str):
            definition_path = root / properties.pop("DefinitionUri")
            if not definition_path.is_file():
                raise TemplateError(f"{name}: DefinitionUri {definition_path} does not exist")
            properties["Definition"] = json.loads(definition_path.read_text())
    for name, folder in code_dirs.items():
        if not folder.is_dir():
            raise TemplateError(f"{name}: code folder {folder} does not exist")

    return TransformedTemplate(_translate(template, region), code_dirs)


def cache_folder() -> Path:
    """Where translated templates are kept: $PREDICTFLOW_CACHE_DIR, else the user's cache."""
    configured = os.environ.get("PREDICTFLOW_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "predictflow"


def _translate(template: dict[str, Any], region: str) -> dict[str, Any]:
    """samtranslator's output for `template`, from the cache when this exact input (template,
    region, translator version) was translated before: importing the translator alone takes
    longer than the rest of a local deploy's start."""
    from importlib.metadata import version

    translator_version = version("aws-sam-translator")
    fingerprint = hashlib.sha256(
        json.dumps([template, region, translator_version], sort_keys=True, default=str).encode()
    ).hexdigest()
    cached = cache_folder() / "sam-transform" / f"{fingerprint}.json"
    if cached.is_file():
        return dict(json.loads(cached.read_text()))
    transformed = _sam_translate(template, region)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(transformed))
        partial.replace(cached)
    except OSError as error:
        LOG.warning("could not cache the SAM transform in %s: %s", cached.parent, error)
    return transformed


def _sam_translate(template: dict[str, Any], region: str) -> dict[str, Any]:
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import (
        to_py27_compatible_template,
        undo_mark_unicode_str_in_template,
    )

    # What samtranslator's own `transform()` does, with the region given rather than read
    # from the environment. The template names no managed policy by name, so the map of
    # managed policies (an IAM call on AWS) is empty.
    fragment = copy.deepcopy(template)
    parameters: dict[str, Any] = {"AWS::Region": region}
    to_py27_compatible_template(fragment, parameters)
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    transformed = translator.translate(fragment, parameter_values=parameters, get_managed_policy_map=dict)
    return dict(undo_mark_unicode_str_in_template(transformed))


@dataclass
class Resolver:
    """Evaluates intrinsic functions against parameters, conditions and created resources."""

    parameters: dict[str, Any]
    pseudo: dict[str, str]
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    conditions: dict[str, bool] = field(default_factory=dict)
    mappings: dict[str, Any] = field(default_factory=dict)

    def evaluate_conditions(self, definitions: Mapping[str, Any]) -> None:
        for name, expression in definitions.items():
            self.conditions[name] = bool(self.resolve(expression))

    def check_rules(self, rules: Mapping[str, Any]) -> None:
        """Refuse the parameters as CloudFormation would: for each rule whose RuleCondition
        holds (or that has none), every Assert must hold; the first that does not raises with
        its AssertDescription."""
        for name, rule in rules.items():
            if "RuleCondition" in rule and not self._truth(rule["RuleCondition"], name):
                continue
            for assertion in rule.get("Assertions", []):
                if not self._truth(assertion["Assert"], name):
                    raise RuleFailed(name, str(assertion.get("AssertDescription", "an assertion failed")))

    def _truth(self, expression: Any, rule: str) -> bool:
        value = self.resolve(expression)
        if not isinstance(value, bool):
            raise TemplateError(f"template rule {rule}: {expression!r} is not a condition")
        return value

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref" or key.startswith("Fn::"):
                return self._intrinsic(key, argument)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        for table in (self.parameters, self.pseudo, self.refs):
            if name in table:
                return table[name]
        raise TemplateError(f"Ref to {name!r}, which is neither a parameter nor a created resource")

    def _get_att(self, resource: str, attribute: str) -> str:
        try:
            return self.attributes[(resource, attribute)]
        except KeyError:
            raise TemplateError(f"Fn::GetAtt {resource}.{attribute} is not available locally") from None

    def _intrinsic(self, key: str, argument: Any) -> Any:
        if key == "Ref":
            return self._ref(argument)
        if key == "Fn::GetAtt":
            resource, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self._get_att(resource, attribute)
        if key == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return self._sub(text, {k: self.resolve(v) for k, v in variables.items()})
        if key == "Fn::Join":
            delimiter, items = argument
            return delimiter.join(str(item) for item in self.resolve(items))
        if key == "Fn::If":
            condition, when_true, when_false = argument
            return self.resolve(when_true if self.conditions[condition] else when_false)
        if key == "Fn::Equals":
            left, right = (self.resolve(item) for item in argument)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self.resolve(argument[0])
        if key == "Fn::And":
            return all(self.resolve(item) for item in argument)
        if key == "Fn::Or":
            return any(self.resolve(item) for item in argument)
        if key == "Fn::Select":
            index, items = argument
            return self.resolve(items)[int(self.resolve(index))]
        if key == "Fn::FindInMap":
            table, first, second = (self.resolve(item) for item in argument)
            try:
                return self.mappings[table][first][second]
            except KeyError:
                raise TemplateError(f"Fn::FindInMap: no {table}.{first}.{second}") from None
        if key == "Fn::Split":
            delimiter, text = argument
            return str(self.resolve(text)).split(delimiter)
        raise TemplateError(f"intrinsic function {key} is not supported by the local stack")

    def _sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".", 1)[0] not in self.parameters:
                return str(self._get_att(*name.split(".", 1)))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def references(value: Any) -> set[str]:
    """The logical ids a resource's properties point at (for ordering the deployment)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item[0] if isinstance(item, list) else item.split(".", 1)[0])
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                found |= {name.split(".", 1)[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", text)}
                if isinstance(item, list):
                    found |= references(item[1])
            else:
                found |= references(item)
    return found
