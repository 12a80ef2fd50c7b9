"""MockConfigFile.json, read as Step Functions Local reads it, and the local stack's one option.

The file is Step Functions Local's format, and complete as it requires: each test case names
every Lambda state its path reaches, and each mocked response answers every invocation of its
state (zero-based, retries included, consecutive), so the same scenarios run there unchanged.

The local stack runs the real handlers, so a scenario's failures meet real data. That is this
module's option, by name: `use_test_case_with_real_handlers` injects the test case's `Throw`
answers and lets the real handler answer wherever the case says `Return` (the payload there is
what Step Functions Local would return). Nothing else reads the file that way.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from predictflow.local.moto_bridge import MockedResponse, StepFunctionsLocalMocks
from predictflow.local.stack import LocalStack

MOCK_CONFIG = Path(__file__).resolve().parent / "MockConfigFile.json"
STATE_MACHINE = "PredictionStateMachine"


@dataclass(frozen=True)
class Answer:
    returned: Any = None
    error: str | None = None
    cause: str = ""


def answers(config: dict[str, Any], mock: str) -> list[Answer]:
    """One mocked response's answers by invocation number; refuses gaps, as Step Functions
    Local fails an execution at an invocation it has no answer for."""
    found: dict[int, Answer] = {}
    for numbers, answer in config["MockedResponses"][mock].items():
        first, _, last = numbers.partition("-")
        for number in range(int(first), int(last or first) + 1):
            if "Throw" in answer:
                found[number] = Answer(error=answer["Throw"]["Error"], cause=answer["Throw"].get("Cause", ""))
            else:
                found[number] = Answer(returned=answer["Return"])
    if sorted(found) != list(range(len(found))):
        raise ValueError(f"{mock}: invocation numbers {sorted(found)} are not consecutive from 0")
    return [found[number] for number in range(len(found))]


def load_case(name: str, path: Path = MOCK_CONFIG) -> dict[str, list[Answer]]:
    """State name -> its answers, for one test case of the file."""
    config = json.loads(path.read_text())
    case = config["StateMachines"][STATE_MACHINE]["TestCases"][name]
    return {state: answers(config, mock) for state, mock in case.items()}


def use_test_case_with_real_handlers(stack: LocalStack, name: str, path: Path = MOCK_CONFIG) -> None:
    """REAL HANDLERS: inject the case's `Throw` answers; every `Return` runs the real handler.

    Until `stack.clear_mocks()`. A throw is injected by function, so it must be on a state
    whose function no other state shares (the invoker cannot tell those states apart)."""
    function_of_state = stack.lambda_states()
    throws: dict[str, dict[int, MockedResponse]] = {}
    for state, state_answers in load_case(name, path).items():
        injected = {n: a for n, a in enumerate(state_answers) if a.error is not None}
        if not injected:
            continue
        if state not in function_of_state:
            raise ValueError(f"{name}: {state} shares its function with other states: its throws cannot go")
        throws[function_of_state[state]] = {
            n: MockedResponse(error=a.error, cause=a.cause) for n, a in injected.items()
        }
    stack.invoker.mocks = StepFunctionsLocalMocks(throws)


def lambda_states_reached(definition: dict[str, Any], case: dict[str, list[Answer]]) -> Iterator[str]:
    """The Lambda states an execution of `case` reaches, in order, one per invocation, as
    Step Functions would run them on these answers (Retry and Catch applied; every branch of a
    Choice followed, since a Choice reads data; each Map's iterator walked once, as the cases
    plan one chunk). Raises KeyError naming a state the case gives no answer for."""
    used: dict[str, int] = {}

    def walk(states: dict[str, Any], name: str | None) -> Iterator[str]:
        while name is not None:
            state = states[name]
            kind = state["Type"]
            if kind == "Task":
                name = yield from task(name, state)
            elif kind == "Map":
                processor = state["ItemProcessor"]
                yield from walk(processor["States"], processor["StartAt"])
                name = state.get("Next")
            elif kind == "Choice":
                targets = [choice["Next"] for choice in state["Choices"]] + [state.get("Default")]
                for target in dict.fromkeys(t for t in targets if t):
                    yield from walk(states, target)
                return
            elif kind in ("Pass", "Wait"):
                name = state.get("Next")
            else:  # Succeed, Fail
                return

    def task(name: str, state: dict[str, Any]) -> Generator[str, None, str | None]:
        retries: dict[int, int] = {}
        while True:
            if name not in case:
                raise KeyError(f"the case has no mocked response for state {name!r}")
            number = used.get(name, 0)
            if number >= len(case[name]):
                raise KeyError(f"state {name!r}: no answer for invocation {number}")
            used[name] = number + 1
            yield name
            error = case[name][number].error
            if error is None:
                return state.get("Next")
            # The first retrier whose ErrorEquals matches decides, with its own count.
            retriers = [(i, r) for i, r in enumerate(state.get("Retry", [])) if matches(r, error)]
            if retriers:
                index, retrier = retriers[0]
                retries[index] = retries.get(index, 0) + 1
                if retries[index] <= retrier.get("MaxAttempts", 3):
                    continue
            catchers = [c for c in state.get("Catch", []) if matches(c, error)]
            return catchers[0]["Next"] if catchers else None  # None: the execution fails here

    return walk(definition["States"], definition["StartAt"])


def matches(handler: dict[str, Any], error: str) -> bool:
    return error in handler["ErrorEquals"] or "States.ALL" in handler["ErrorEquals"]
