from srgan_cli.cli import main

main()
