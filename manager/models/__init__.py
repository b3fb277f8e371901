"""SQLAlchemy 2.0 typed models: the seed's schema plus tokens, login attempts and the audit log."""

from manager.models.audit import AuditEvent
from manager.models.catalog import CondaEnvironment, Script, ScriptGroup, UserScriptTag
from manager.models.execution import Execution, ScriptProcess
from manager.models.log_extras import RunBookmark, RunShareLink
from manager.models.logs import JobLock, LogFilterPreset
from manager.models.personal import ParameterPreset, Schedule, ScriptFavorite
from manager.models.pool import PoolDemand, PoolSlot
from manager.models.project import UserProject
from manager.models.user import (
    LEVELS,
    ApiToken,
    LoginAttempt,
    SessionTicket,
    User,
    UserLogin,
    level_at_least,
)
from manager.models.util import utcnow

__all__ = [
    "LEVELS",
    "ApiToken",
    "AuditEvent",
    "CondaEnvironment",
    "Execution",
    "JobLock",
    "LogFilterPreset",
    "LoginAttempt",
    "ParameterPreset",
    "PoolDemand",
    "PoolSlot",
    "RunBookmark",
    "RunShareLink",
    "Schedule",
    "Script",
    "ScriptFavorite",
    "ScriptGroup",
    "ScriptProcess",
    "SessionTicket",
    "User",
    "UserLogin",
    "UserProject",
    "UserScriptTag",
    "level_at_least",
    "utcnow",
]
