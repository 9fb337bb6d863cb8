"""User-facing errors.

Every error a user can cause (a bad config key, a model that cannot be found, a backend that is not
installed) is a ``UserError``: the CLI prints its message as one line and exits with code 2, instead
of a traceback from deep inside a library.
"""


class UserError(Exception):
    """An error caused by input the user controls; the message says what to change."""

    exit_code = 2


class ConfigError(UserError):
    """A config key that does not exist, or a value of the wrong type or outside its choices."""


class ModelNotFoundError(UserError):
    """A model spec that resolves to nothing on disk and cannot be downloaded."""


class BackendUnavailableError(UserError):
    """A generation backend whose library is not installed or cannot run here."""


class PromptTooLongError(UserError):
    """A prompt that does not fit the model's context window."""


class DataError(UserError):
    """An input data file that is missing or unusable as a whole (single bad lines become rejects)."""


class RunDirConflictError(UserError):
    """A run directory that already holds results made with a different config."""


class TrainingDivergedError(UserError):
    """The training loss became NaN or infinite; the last saved checkpoint is kept."""

    exit_code = 3
