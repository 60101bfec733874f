"""The error every run service raises for a request it cannot honour."""


class RunRequestError(ValueError):
    """A request for a run that cannot be honoured; the message says what to fix.

    ``field`` names what was wrong (a form field or API key: "prompt_text", "inputs", "node",
    "like", a parameter such as "num_steps", or "weight_<hint>"), so a page can show the message
    next to it.
    """

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field
