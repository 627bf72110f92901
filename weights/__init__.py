"""The shipped registry (models.json) and weights (*.safetensors), installed as the package
``srgan_cli.weights_data`` (see ``[tool.setuptools]`` in pyproject.toml) so that an installed
srgan finds them with ``importlib.resources``. No code here."""
