"""On-device statistics: summaries and the pending buffer flushed to the host."""

from .buffers import Pending
from .summary import (SUMMARY, Unsupported, feature_moments, guard, label_histogram,
                      summarize, summary_row)

__all__ = ["Pending", "SUMMARY", "Unsupported", "feature_moments", "guard",
           "label_histogram", "summarize", "summary_row"]
