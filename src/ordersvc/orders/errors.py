from ordersvc.errors import NotFound


class OrderNotFound(NotFound):
    message = "No such order."
