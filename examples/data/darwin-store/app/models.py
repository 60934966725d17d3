"""darwin-store: the product model (kept in memory)."""

from dataclasses import dataclass


@dataclass
class Product:
    id: int
    name: str
    price_cents: int


_products: list[Product] = []


def add_product(name: str, price_cents: int) -> Product:
    product = Product(id=len(_products) + 1, name=name, price_cents=price_cents)
    _products.append(product)
    return product


def all_products() -> list[Product]:
    return list(_products)
