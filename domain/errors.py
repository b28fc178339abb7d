"""Errors a user can cause, each with a message a registrar can act on.

They are mapped to HTTP statuses and dead-letter reasons in one place (api/errors.py).
"""


class DomainError(Exception):
    """Base of every refusal the domain can give."""

    code = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidValue(DomainError, ValueError):
    """A value that can never be right, whatever the state (a malformed IIN)."""

    code = "invalid_value"


class RuleViolation(DomainError):
    """The Rules forbid this decision; `clause` cites the paragraph applied."""

    code = "rule_violation"

    def __init__(self, clause: str, message: str) -> None:
        super().__init__(f"{clause}: {message}")
        self.clause = clause


class NotInForce(RuleViolation):
    """No version of the Rules, or not the cited clause, is in force on the date."""

    code = "not_in_force"


class InvalidTransition(DomainError):
    """The case is not in a state where this command makes sense (409)."""

    code = "invalid_transition"


class CaseNotFound(DomainError):
    code = "not_found"
