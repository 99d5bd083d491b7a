from tandem.services.launch import run_service
from tandem.services.router.app import create_app
from tandem.services.router.settings import RouterSettings

if __name__ == "__main__":
    run_service("router", RouterSettings, create_app)
