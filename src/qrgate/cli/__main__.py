from qrgate.cli.main import main

# Guarded: uvicorn's worker processes start by importing the main module again.
if __name__ == "__main__":
    main()
