"""The library's exceptions. The CLI turns each into one line with the fix and an exit code.

Exit code 2: the user can fix the input or the command line. Exit code 1: something failed while running."""

def first_line(e: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message for a one-line error; its type's name when it has none."""
    text = str(e).strip()
    return text.splitlines()[0][:limit] if text else type(e).__name__


class DiverLiteError(Exception):
    """Base class. `hint` says how to fix it; `exit_code` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(DiverLiteError):
    """An option value or a combination of options is invalid."""

    exit_code = 2


class InputError(DiverLiteError):
    """A distilled set (or class map) cannot be read or does not match any layout."""

    exit_code = 2


class ModelError(DiverLiteError):
    """A model folder or checkpoint is missing, incomplete or of the wrong shape."""

    exit_code = 2


class OutputError(DiverLiteError):
    """The output folder exists, cannot be written, or belongs to a different run."""

    exit_code = 2


class StorageError(DiverLiteError):
    """Writing failed while running: the disk is full or the file system refused a write."""

    exit_code = 1


class MissingDependencyError(DiverLiteError):
    """An optional package is needed for the requested feature."""

    exit_code = 2

    def __init__(self, package: str, feature: str, install: str):
        super().__init__(f"{feature} needs the package '{package}'", f"install it: {install}")


class ExportError(DiverLiteError):
    """An ONNX graph could not be exported, or does not match torch within its tolerance."""

    exit_code = 1


class GraphShapeError(ExportError):
    """An exported graph's output has another shape than torch's (e.g. a batch fixed by the exporter)."""


class GraphToleranceError(ExportError):
    """An exported graph's outputs differ from torch's beyond its GraphSpec's tolerance."""
