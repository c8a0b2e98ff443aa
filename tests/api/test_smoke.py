async def test_healthz_reports_database_and_redis(client, demo):
    _, response = await client.get("/healthz")
    assert response.status == 200
    assert response.json == {"status": "ok", "database": "ok", "redis": "ok"}
