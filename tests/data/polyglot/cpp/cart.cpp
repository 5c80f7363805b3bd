#include <map>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace shop {

constexpr int kTaxPercent = 20;

struct Item {
    std::string sku;
    int price = 0;
    int quantity = 1;
};

// A customer's cart of items, with at most one discount.
class Cart {
  public:
    explicit Cart(std::string customer) : customer_(std::move(customer)) {}

    void add(const Item& item);
    void remove(const std::string& sku);

    bool empty() const { return items_.empty(); }

    std::size_t size() const { return items_.size(); }

    bool contains(const std::string& sku) const { return items_.count(sku) > 0; }

    std::vector<std::string> skus() const {
        std::vector<std::string> skus;
        skus.reserve(items_.size());
        for (const auto& entry : items_) {
            skus.push_back(entry.first);
        }
        return skus;
    }

    int quantity_of(const std::string& sku) const {
        auto found = items_.find(sku);
        return found == items_.end() ? 0 : found->second.quantity;
    }

    void apply_discount(int percent) {
        if (percent < 0 || percent > 100) {
            throw std::invalid_argument("discount must be 0..100");
        }
        discount_ = percent;
    }

    bool has_discount() const { return discount_ > 0; }

    int subtotal() const {
        int sum = 0;
        for (const auto& [sku, item] : items_) {
            sum += item.price * item.quantity;
        }
        return sum;
    }

    int taxable() const {
        const int sum = subtotal();
        return sum - sum * discount_ / 100;
    }

    // Tax is rounded up to the next cent.
    int total() const {
        const int base = taxable();
        return base + (base * kTaxPercent + 99) / 100;
    }

    const std::string& customer() const { return customer_; }

    void clear() {
        items_.clear();
        discount_ = 0;
    }

    struct Line {
        std::string sku;
        int quantity;
        int amount;
    };

    std::map<std::string, Line> lines() const {
        std::map<std::string, Line> lines;
        for (const auto& [sku, item] : items_) {
            lines[sku] = Line{sku, item.quantity, item.price * item.quantity};
        }
        return lines;
    }

  private:
    std::string customer_;
    std::map<std::string, Item> items_;
    int discount_ = 0;
};

void Cart::add(const Item& item) {
    auto& line = items_[item.sku];
    line.sku = item.sku;
    line.price = item.price;
    line.quantity += item.quantity;
}

void Cart::remove(const std::string& sku) {
    if (items_.erase(sku) == 0) {
        throw std::out_of_range(sku + " is not in the cart");
    }
}

std::ostream& operator<<(std::ostream& out, const Cart& cart) {
    return out << "Cart(" << cart.customer() << ", " << cart.size() << " items)";
}

}  // namespace shop
