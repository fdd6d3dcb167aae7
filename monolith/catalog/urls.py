from django.urls import path

from monolith.catalog import apis

urlpatterns = [
    path("api/catalog/categories", apis.categories, name="categories"),
    path("api/catalog/categories/<int:category_id>", apis.category, name="category"),
    path("api/catalog/products", apis.products, name="products"),
    path("api/catalog/products/<int:product_id>", apis.product, name="product"),
]
