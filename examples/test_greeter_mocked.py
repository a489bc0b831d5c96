"""Unit-testing a component by mocking its imports (run by CI: `pytest examples`).

The greeter component imports `example:greeter/logger`. In a test you hand it a Mock
built from the generated Protocol, then assert on the calls as with any Python code.
"""

from pathlib import Path
from unittest.mock import Mock

import pytest

import wasm_import

greeter = wasm_import.load(Path(__file__).with_name("greeter.wasm"))


@pytest.fixture
def logger():
    return Mock(spec=greeter.imports.Logger)  # only the functions the component imports


def test_greet_logs_the_greeting(logger):
    inst = greeter.instantiate(imports={"example:greeter/logger": logger})

    assert inst.greet.greet("Ada") == "Hello, Ada!"

    logger.log.assert_called_once_with("Hello, Ada!")


def test_a_failing_logger_fails_the_call(logger):
    logger.log.side_effect = ConnectionError("log server down")
    inst = greeter.instantiate(imports={"example:greeter/logger": logger})

    with pytest.raises(ConnectionError, match="log server down"):
        inst.greet.greet("Ada")


def test_forgetting_an_import_says_what_is_missing():
    inst = greeter.instantiate()  # nothing supplied: calls that need the logger fail

    with pytest.raises(wasm_import.LinkError, match=r"log: func\(msg: string\)"):
        inst.greet.greet("Ada")
