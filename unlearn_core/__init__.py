"""unlearn_core: certified machine unlearning of neural networks, UI-free.

The engine behind the unlearn-explorer dashboard and CLI. It never imports streamlit.
"""

__version__ = "0.1.0"
