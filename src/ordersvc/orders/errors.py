from ordersvc.errors import Conflict, NotFound


class OrderNotFound(NotFound):
    message = "No such order."


class RecipientOptedOut(Conflict):
    code = "recipient_opted_out"
    message = "Recipient has opted out."
