"""Pair builders, one module each: musc_coarse, musc_fine, musc (both), ecd, apc.

Each module ends with its declaration ``SPEC = Method(...)`` (``musc_ecd.registry``), which maps names to
modules; the registry's functions are re-exported here for scripts that import them from this package.
"""

from musc_ecd.registry import METHODS, check_method_name, check_roles, get_method, roles_called

__all__ = ["METHODS", "check_method_name", "check_roles", "get_method", "roles_called"]
