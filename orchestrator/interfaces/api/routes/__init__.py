"""The API's routes, one module per group; each builds an ``APIRouter`` over the app's mesh."""
