"""The large code context the context-heavy prompts carry: a small order service in four files and a trace.

Written for the benchmark, not taken from anywhere. About 1,300 prompt tokens (1,600 with the trace):
enough to make prefill and the KV cache matter, small enough for an 8K context with a 1,000-token answer.
"""

from __future__ import annotations

ORDER_SERVICE = '''\
# --- shop/models.py ------------------------------------------------------------------------------
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum


class OrderState(Enum):
    DRAFT = "draft"
    PLACED = "placed"
    PAID = "paid"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


@dataclass
class Line:
    sku: str
    quantity: int
    unit_price: Decimal

    @property
    def total(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass
class Order:
    id: int
    customer_id: int
    lines: list[Line] = field(default_factory=list)
    state: OrderState = OrderState.DRAFT
    placed_at: datetime | None = None
    discount_code: str | None = None

    def subtotal(self) -> Decimal:
        return sum((line.total for line in self.lines), Decimal("0"))


# --- shop/repository.py --------------------------------------------------------------------------
import sqlite3
from decimal import Decimal

from shop.models import Line, Order, OrderState

_cache: dict[int, Order] = {}


class OrderRepository:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def get(self, order_id: int) -> Order | None:
        if order_id in _cache:
            return _cache[order_id]
        row = self.conn.execute("SELECT id, customer_id, state, discount_code FROM orders "
                                "WHERE id = %s" % order_id).fetchone()
        if row is None:
            return None
        order = Order(row[0], row[1], state=OrderState(row[2]), discount_code=row[3])
        for sku, qty, price in self.conn.execute(
                "SELECT sku, quantity, unit_price FROM lines WHERE order_id = ?", (order_id,)):
            order.lines.append(Line(sku, qty, Decimal(price)))
        _cache[order_id] = order
        return order

    def save(self, order: Order) -> None:
        self.conn.execute("UPDATE orders SET state = ?, discount_code = ? WHERE id = ?",
                          (order.state.value, order.discount_code, order.id))
        self.conn.commit()


# --- shop/pricing.py -----------------------------------------------------------------------------
from decimal import Decimal, ROUND_HALF_UP

DISCOUNTS = {"WELCOME10": Decimal("0.10"), "VIP25": Decimal("0.25")}
TAX_RATE = Decimal("0.2")


def price_order(order, customer_tier: str) -> Decimal:
    subtotal = order.subtotal()
    if order.discount_code:
        subtotal = subtotal - subtotal * DISCOUNTS[order.discount_code]
    if customer_tier == "gold":
        subtotal = subtotal * Decimal("0.95")
    total = subtotal + subtotal * TAX_RATE
    return total.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# --- shop/service.py -----------------------------------------------------------------------------
import logging
import threading
from datetime import datetime

from shop.models import OrderState
from shop.pricing import price_order
from shop.repository import OrderRepository

log = logging.getLogger(__name__)
_lock = threading.Lock()


class OrderService:
    def __init__(self, repo: OrderRepository, payments, customers, mailer):
        self.repo, self.payments, self.customers, self.mailer = repo, payments, customers, mailer

    def place(self, order_id: int) -> None:
        order = self.repo.get(order_id)
        if order.state != OrderState.DRAFT:
            raise ValueError("order already placed")
        order.state = OrderState.PLACED
        order.placed_at = datetime.now()
        self.repo.save(order)
        self.mailer.send(order.customer_id, "Your order was placed")

    def pay(self, order_id: int, card_token: str) -> bool:
        with _lock:
            order = self.repo.get(order_id)
            customer = self.customers.get(order.customer_id)
            amount = price_order(order, customer.tier)
            try:
                self.payments.charge(card_token, amount)
            except Exception:
                log.error("payment failed")
                return False
            order.state = OrderState.PAID
            self.repo.save(order)
            return True

    def cancel(self, order_id: int) -> None:
        order = self.repo.get(order_id)
        if order.state == OrderState.SHIPPED:
            raise ValueError("too late to cancel")
        if order.state == OrderState.PAID:
            self.payments.refund(order.id)
        order.state = OrderState.CANCELLED
        self.repo.save(order)


# --- shop/api.py ---------------------------------------------------------------------------------
from flask import Flask, jsonify, request

app = Flask(__name__)
service: OrderService  # wired at start-up


@app.post("/orders/<int:order_id>/pay")
def pay(order_id):
    ok = service.pay(order_id, request.json["card_token"])
    return jsonify({"paid": ok}), 200


@app.post("/orders/<int:order_id>/cancel")
def cancel(order_id):
    service.cancel(order_id)
    return jsonify({"cancelled": True})
'''

TRACE = '''\
2026-03-02 14:07:11,482 ERROR shop.api Exception on /orders/8812/pay [POST]
Traceback (most recent call last):
  File "/srv/shop/venv/lib/python3.11/site-packages/flask/app.py", line 1473, in wsgi_app
    response = self.full_dispatch_request()
  File "/srv/shop/shop/api.py", line 9, in pay
    ok = service.pay(order_id, request.json["card_token"])
  File "/srv/shop/shop/service.py", line 28, in pay
    amount = price_order(order, customer.tier)
  File "/srv/shop/shop/pricing.py", line 9, in price_order
    subtotal = subtotal - subtotal * DISCOUNTS[order.discount_code]
KeyError: 'SPRING5'
2026-03-02 14:07:11,913 WARNING shop.service payment failed
2026-03-02 14:07:12,020 INFO shop.api POST /orders/8812/pay 200 {"paid": false}
2026-03-02 14:09:40,117 ERROR shop.api Exception on /orders/8790/cancel [POST]
Traceback (most recent call last):
  File "/srv/shop/shop/api.py", line 15, in cancel
    service.cancel(order_id)
  File "/srv/shop/shop/service.py", line 41, in cancel
    if order.state == OrderState.SHIPPED:
AttributeError: 'NoneType' object has no attribute 'state'
2026-03-02 14:11:03,554 INFO shop.worker refunds: order 8755 refunded twice (payments id rf_19a2, rf_19a7)
'''
