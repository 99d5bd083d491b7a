from tandem.services.launch import run_service
from tandem.services.worker.app import create_app
from tandem.services.worker.settings import WorkerSettings

if __name__ == "__main__":
    run_service("base_model", WorkerSettings, create_app)
