"""The engine's touched set (exchange.accounts.touched.Touched): a set whose additions are logged, repeats
included, with a generation that ends at ``clear`` (the end of a command)."""
from exchange import Deposit, Exchange
from exchange.accounts.touched import Touched
from tests.conftest import make_instrument


def test_every_addition_is_logged_and_clear_starts_a_new_generation():
    touched = Touched()
    touched.add(3)
    touched.add(3)
    touched |= {5}
    touched.update([7], (3,))
    assert touched == {3, 5, 7} and touched.log == [3, 3, 5, 7, 3]
    touched.difference_update({5})  # removal is not logged: readers look only at what was added
    assert touched == {3, 7} and touched.log == [3, 3, 5, 7, 3]
    generation = touched.generation
    touched.clear()
    assert not touched and touched.log == [] and touched.generation == generation + 1


def test_the_exchange_uses_it_and_clears_it_after_each_command():
    ex = Exchange([make_instrument()])
    assert isinstance(ex._touched, Touched)
    generation = ex._touched.generation
    ex.apply(Deposit(1, 100))
    assert not ex._touched and ex._touched.generation == generation + 1
