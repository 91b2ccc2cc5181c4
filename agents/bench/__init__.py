"""The measures (``i247 bench``), the soak (``make soak``) and its checker."""
