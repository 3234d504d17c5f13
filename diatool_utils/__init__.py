"""diatool_utils: the tested helpers behind the DiaTool-DPO notebooks.

One module per idea; import what you need, e.g. ``from diatool_utils.models import
load_model_and_tokenizer``. Nothing heavy is imported here.
"""

__version__ = "0.1.0"
