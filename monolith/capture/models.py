"""No models. The module exists because Django sends ``post_migrate`` only to apps that
have one, and the capture app reinstalls its triggers on that signal."""
