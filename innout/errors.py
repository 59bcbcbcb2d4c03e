"""The one base class of every error a user can cause.

A missing or unreadable file, a video without a face, a wrong setting, a checkpoint that is not EG3D's, a
render request the scene cannot serve: each is a ``UserError`` subclass, whose message says what is wrong
and what to do. The command line prints ``error: <message>`` for these and only these (anything else is a
bug and keeps its traceback); the app shows the message in the page.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix: the message says what and how."""
