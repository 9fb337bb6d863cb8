from musc_ecd.cli import main

if __name__ == "__main__":  # guard needed: vLLM's engine may spawn worker processes
    raise SystemExit(main())
