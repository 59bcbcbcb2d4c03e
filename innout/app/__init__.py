"""The Gradio studio (``python app.py``): runtime (generator, device, directions), one session per
user, charts, and the UI that wires them together."""
