"""`python -m srgan_cli`: the same command line as `srgan`."""

from srgan_cli.cli import main

main()
