"""diatool_utils: the tested helpers behind the DiaTool-DPO notebooks.

One module per idea; import what you need, e.g. ``from diatool_utils.models import
load_model_and_tokenizer``. Nothing heavy is imported here.
"""

import logging

__version__ = "0.1.0"


class _NoHubKernelNote(logging.Filter):
    """Drops the one note bitsandbytes 0.50.2 logs when it is imported on a CPU with AVX512-BF16: it tries to
    download a faster 4-bit kernel from the Hugging Face Hub and says it could not. This project never downloads
    code at run time, so no user can act on it; the module's other messages pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to load CPU gemm_4bit_forward from kernels-community")


logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_NoHubKernelNote())
