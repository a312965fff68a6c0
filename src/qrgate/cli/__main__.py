from qrgate.cli.main import main

main()
