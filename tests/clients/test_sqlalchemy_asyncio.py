"""SQLAlchemy 2.x's asyncio layer, which runs its sync core inside greenlets, on aiosqlite.

SQLAlchemy's ``greenlet_spawn`` starts a greenlet for each sync call and
``await_only`` switches back to the event loop's greenlet for every awaited
driver call, so each query below makes many greenlet switches.  Each scenario
runs in its own interpreter (see conftest.py) against a SQLite file in the
test's temporary directory.
"""

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("aiosqlite")

MODELS = """
import asyncio
from sqlalchemy import ForeignKey, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "author"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    books: Mapped[list["Book"]] = relationship(back_populates="author")


class Book(Base):
    __tablename__ = "book"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    pages: Mapped[int]
    author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))
    author: Mapped[Author] = relationship(back_populates="books")


def make_engine():
    return create_async_engine("sqlite+aiosqlite:///test.db")
"""


def test_orm_insert_and_read_1000_rows(scenario):
    out = scenario(
        MODELS
        + """
async def main():
    engine = make_engine()
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    Session = async_sessionmaker(engine, expire_on_commit=False)

    async with Session() as session:
        async with session.begin():
            authors = [Author(name="author %d" % i) for i in range(10)]
            session.add_all(authors)
            session.add_all(
                Book(title="book %d" % i, pages=i, author=authors[i % 10])
                for i in range(1000)
            )

    async with Session() as session:
        count = await session.scalar(select(func.count()).select_from(Book))
        assert count == 1000, count
        books = (await session.scalars(select(Book).order_by(Book.id))).all()
        assert [b.title for b in books] == ["book %d" % i for i in range(1000)]
        assert sum(b.pages for b in books) == sum(range(1000))
        result = await session.scalars(
            select(Author).options(selectinload(Author.books)).order_by(Author.id)
        )
        authors = result.all()
        assert [len(a.books) for a in authors] == [100] * 10
        assert all(book.author is a for a in authors for book in a.books)
        # Streaming results: each fetched partition is an awaited driver call.
        seen = 0
        stream = await session.stream_scalars(select(Book.pages).order_by(Book.id))
        async for partition in stream.partitions(64):
            seen += len(partition)
        assert seen == 1000
    await engine.dispose()
    print("rows", count)


asyncio.run(main())
"""
    )
    assert out.strip() == "rows 1000"


def test_run_sync_on_connection_and_session(scenario):
    out = scenario(
        MODELS
        + """
from sqlalchemy import inspect, text


def table_names(sync_conn):
    return sorted(inspect(sync_conn).get_table_names())


def sync_work(sync_session, prefix):
    # Plain synchronous ORM code; SQLAlchemy runs it in a greenlet and each
    # database call switches out to the event loop and back.
    author = Author(name=prefix)
    sync_session.add(author)
    for i in range(50):
        sync_session.add(Book(title="%s %d" % (prefix, i), pages=i, author=author))
    sync_session.flush()
    rows = sync_session.execute(
        select(Book.title).where(Book.author_id == author.id).order_by(Book.id)
    ).scalars().all()
    return len(rows), rows[0], rows[-1]


def raises_inside(sync_session):
    sync_session.execute(text("SELECT * FROM no_such_table"))


async def main():
    engine = make_engine()
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        assert await conn.run_sync(table_names) == ["author", "book"]
    Session = async_sessionmaker(engine, expire_on_commit=False)
    async with Session() as session:
        async with session.begin():
            result = await session.run_sync(sync_work, "sync")
        assert result == (50, "sync 0", "sync 49"), result
        assert await session.scalar(select(func.count()).select_from(Book)) == 50
        try:
            await session.run_sync(raises_inside)
        except Exception as exc:  # the driver error crosses the greenlet boundary
            assert "no_such_table" in str(exc), exc
        else:
            raise AssertionError("run_sync did not raise")
    await engine.dispose()
    print("ok")


asyncio.run(main())
"""
    )
    assert out.strip() == "ok"


def test_concurrent_sessions_under_gather(scenario):
    out = scenario(
        MODELS
        + """
async def worker(Session, n):
    async with Session() as session:
        async with session.begin():
            author = Author(name="worker %d" % n)
            session.add(author)
            session.add_all(
                Book(title="w%d-%d" % (n, i), pages=n * 100 + i, author=author)
                for i in range(100)
            )
        await asyncio.sleep(0)
        titles = (
            await session.scalars(
                select(Book.title).join(Author).where(Author.name == "worker %d" % n)
            )
        ).all()
        assert sorted(titles) == sorted("w%d-%d" % (n, i) for i in range(100)), n
        total = await session.scalar(
            select(func.sum(Book.pages)).where(Book.author_id == author.id)
        )
        return n, len(titles), total


async def main():
    engine = make_engine()
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    Session = async_sessionmaker(engine, expire_on_commit=False)
    results = await asyncio.wait_for(
        asyncio.gather(*(worker(Session, n) for n in range(10))), timeout=60
    )
    assert sorted(results) == [
        (n, 100, sum(n * 100 + i for i in range(100))) for n in range(10)
    ], results
    async with Session() as session:
        assert await session.scalar(select(func.count()).select_from(Book)) == 1000
        assert await session.scalar(select(func.count()).select_from(Author)) == 10
    await engine.dispose()
    print("sessions", len(results))


asyncio.run(main())
"""
    )
    assert out.strip() == "sessions 10"


def test_greenlet_spawn_directly(scenario):
    """The two primitives SQLAlchemy builds on, used the way its dialects do."""
    out = scenario(
        """
import asyncio
import greenlet
from sqlalchemy.util import await_only, greenlet_spawn


async def double_later(x):
    await asyncio.sleep(0)
    return x * 2


def sync_code(n):
    here = greenlet.getcurrent()
    total = 0
    for i in range(n):
        total += await_only(double_later(i))
        assert greenlet.getcurrent() is here
    return total


def sync_raises():
    await_only(asyncio.sleep(0))
    raise LookupError("from sync code")


async def main():
    assert await greenlet_spawn(sync_code, 500) == 2 * sum(range(500))
    results = await asyncio.gather(*(greenlet_spawn(sync_code, 100) for _ in range(20)))
    assert results == [2 * sum(range(100))] * 20
    try:
        await greenlet_spawn(sync_raises)
    except LookupError as exc:
        assert exc.args == ("from sync code",)
    else:
        raise AssertionError("greenlet_spawn did not raise")
    print("ok")


asyncio.run(main())
"""
    )
    assert out.strip() == "ok"
