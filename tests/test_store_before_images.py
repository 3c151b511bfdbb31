"""The CheckpointStore contract for before-images, over every backend."""

from __future__ import annotations

from bulkchime.store import CheckpointStore

from .test_store_contract import JOB, new_store, store  # noqa: F401  (the fixtures)


async def images(store: CheckpointStore) -> list[tuple[str, str, dict[str, object]]]:  # noqa: F811
    return [image async for image in store.before_images()]


async def test_a_new_store_has_no_before_images(store: CheckpointStore) -> None:  # noqa: F811
    await store.check_job(JOB)
    assert await images(store) == []


async def test_before_images_are_kept_in_account_then_subject_order(
    store: CheckpointStore,  # noqa: F811
) -> None:
    await store.check_job(JOB)
    await store.add_before_images("b", [("u2", {"LicenseType": "Basic"})])
    await store.add_before_images(
        "a", [("u9", {"LicenseType": "Pro", "UserType": "PrivateUser"}), ("u1", {})]
    )
    await store.add_before_images("b", [])

    assert await images(store) == [
        ("a", "u1", {}),
        ("a", "u9", {"LicenseType": "Pro", "UserType": "PrivateUser"}),
        ("b", "u2", {"LicenseType": "Basic"}),
    ]


async def test_the_first_image_of_a_subject_wins(store: CheckpointStore) -> None:  # noqa: F811
    await store.check_job(JOB)
    await store.add_before_images("a", [("u1", {"LicenseType": "Basic"})])
    # Read again after the change (a resumed run), and twice in one call: ignored.
    await store.add_before_images(
        "a", [("u1", {"LicenseType": "Pro"}), ("u2", {"x": "1"}), ("u2", {"x": "2"})]
    )

    assert await images(store) == [
        ("a", "u1", {"LicenseType": "Basic"}),
        ("a", "u2", {"x": "1"}),
    ]


async def test_before_images_are_read_in_pages(store: CheckpointStore) -> None:  # noqa: F811
    await store.check_job(JOB)
    pairs = [(f"u{n:05d}", {"n": str(n)}) for n in range(4500)]
    for start in range(0, len(pairs), 1000):
        await store.add_before_images("acc", pairs[start : start + 1000])

    read = await images(store)
    assert [subject for _, subject, _ in read] == [subject for subject, _ in pairs]
    assert read[-1] == ("acc", "u04499", {"n": "4499"})


async def test_same_subject_in_two_accounts_is_two_images(
    store: CheckpointStore,  # noqa: F811
) -> None:
    await store.check_job(JOB)
    await store.add_before_images("a", [("acc", {"Name": "A"})])
    await store.add_before_images("b", [("acc", {"Name": "B"})])
    assert [image["Name"] for _, _, image in await images(store)] == ["A", "B"]
