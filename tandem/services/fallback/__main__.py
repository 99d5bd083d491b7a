from tandem.services.fallback.app import create_app
from tandem.services.fallback.settings import FallbackSettings
from tandem.services.launch import run_service

if __name__ == "__main__":
    run_service("fallback", FallbackSettings, create_app)
