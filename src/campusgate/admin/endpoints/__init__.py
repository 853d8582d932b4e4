"""The admin API's endpoints, one module per kind of object; each builds an APIRouter."""
