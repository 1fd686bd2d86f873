<?php
// The client class reseller panels hand their customers for the panel API v2, in its usual
// shape: each call a form-encoded POST through curl (CURLOPT_POSTFIELDS with a urlencoded string,
// so curl sends application/x-www-form-urlencoded), each answer read with json_decode. Run by
// tests/panel/test_panel_clients.py: `php panel_client.php <api url> <key> <recipient>` prints
// what every call returned, as JSON.

class Api
{
    public $api_url;
    public $api_key;

    public function __construct($api_url, $api_key)
    {
        $this->api_url = $api_url;
        $this->api_key = $api_key;
    }

    public function order($data)
    {
        $post = array_merge(['key' => $this->api_key, 'action' => 'add'], $data);
        return json_decode((string)$this->connect($post));
    }

    public function status($order_id)
    {
        return json_decode($this->connect(['key' => $this->api_key, 'action' => 'status', 'order' => $order_id]));
    }

    public function multiStatus($order_ids)
    {
        return json_decode($this->connect([
            'key' => $this->api_key, 'action' => 'status', 'orders' => implode(',', (array)$order_ids),
        ]));
    }

    public function services()
    {
        return json_decode($this->connect(['key' => $this->api_key, 'action' => 'services']));
    }

    public function refill(int $orderId)
    {
        return json_decode($this->connect(['key' => $this->api_key, 'action' => 'refill', 'order' => $orderId]));
    }

    public function multiRefill(array $orderIds)
    {
        return json_decode($this->connect([
            'key' => $this->api_key, 'action' => 'refill', 'orders' => implode(',', $orderIds),
        ]), true);
    }

    public function refillStatus(int $refillId)
    {
        return json_decode($this->connect(['key' => $this->api_key, 'action' => 'refill_status', 'refill' => $refillId]));
    }

    public function cancel(array $orderIds)
    {
        return json_decode($this->connect([
            'key' => $this->api_key, 'action' => 'cancel', 'orders' => implode(',', $orderIds),
        ]), true);
    }

    public function balance()
    {
        return json_decode($this->connect(['key' => $this->api_key, 'action' => 'balance']));
    }

    private function connect($post)
    {
        $_post = [];
        if (is_array($post)) {
            foreach ($post as $name => $value) {
                $_post[] = $name . '=' . urlencode($value);
            }
        }
        $ch = curl_init($this->api_url);
        curl_setopt($ch, CURLOPT_RETURNTRANSFER, 1);
        curl_setopt($ch, CURLOPT_POST, 1);
        curl_setopt($ch, CURLOPT_HEADER, 0);
        curl_setopt($ch, CURLOPT_SSL_VERIFYPEER, 0);
        curl_setopt($ch, CURLOPT_TIMEOUT, 10);
        if (is_array($post)) {
            curl_setopt($ch, CURLOPT_POSTFIELDS, join('&', $_post));
        }
        curl_setopt($ch, CURLOPT_USERAGENT, 'Mozilla/4.0 (compatible; MSIE 5.01; Windows NT 5.0)');
        $result = curl_exec($ch);
        if (curl_errno($ch) != 0 && empty($result)) {
            $result = false;
        }
        curl_close($ch);
        return $result;
    }
}

[, $url, $key, $to] = $argv;
$api = new Api($url, $key);
$out = [];
$out['services'] = $api->services();
$out['balance'] = $api->balance();
$order = $api->order(['service' => 1, 'link' => $to, 'quantity' => 1000]);
$out['order'] = $order;
$out['status'] = $api->status($order->order);
$out['multiStatus'] = $api->multiStatus([$order->order, 12345]);
$out['refused'] = [
    'service' => $api->order(['service' => 2, 'link' => $to, 'quantity' => 1000]),
    'link' => $api->order(['service' => 1, 'link' => 'https://example.com/', 'quantity' => 1000]),
    'min' => $api->order(['service' => 1, 'link' => $to, 'quantity' => 100]),
    'max' => $api->order(['service' => 1, 'link' => $to, 'quantity' => 60000]),
    'funds' => $api->order(['service' => 1, 'link' => $to, 'quantity' => 50000]),
    'status' => $api->status(12345),
];
$out['refill'] = $api->refill($order->order);
$out['multiRefill'] = $api->multiRefill([$order->order]);
$out['refillStatus'] = $api->refillStatus(1);
$out['cancel'] = $api->cancel([$order->order, 12345]);
$out['statusAfter'] = $api->status($order->order);
$out['balanceAfter'] = $api->balance();
$out['badKey'] = (new Api($url, 'osk_wrong'))->balance();
echo json_encode($out);
