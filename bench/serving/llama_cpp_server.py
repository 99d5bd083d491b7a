"""llama-cpp-python's own server, with the same AMX-safe model params as Tandem's engine."""

from tandem.engine.llama_loader import install_safe_defaults

if __name__ == "__main__":
    install_safe_defaults()
    from llama_cpp.server.__main__ import main

    main()
