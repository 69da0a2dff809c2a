"""OpenVINO's usage telemetry, declined in this process.

openvino-telemetry sends a Google Analytics event, from a forked process each, when NNCF compresses
weights or OpenVINO converts a model: one ``nncf.compress_weights`` looked up www.google-analytics.com
ten times here. It reads no switch but ``CI=true`` and a consent file in the user's home
(``~/intel/openvino_telemetry``, written by OpenVINO's ``opt_in_out`` tool). quantbench never phones
home, so it declines in its own process: the consent check answers "declined", and the user's home is
left as it was. A forked sender stuck in glibc's resolver lock also kept ``make test`` from exiting.
"""

from __future__ import annotations


def decline() -> None:
    """Decline before NNCF or OpenVINO build their telemetry object; silence one built already."""
    try:
        from openvino_telemetry.main import Telemetry
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:  # not installed: nothing would be sent
        return
    OptInChecker.check = lambda self, *args, **kwargs: ConsentCheckResult.DECLINED
    built = getattr(Telemetry, "_SingletonMetaClass__single_instance", None)
    if built is not None:
        built.consent = False
