with

source as (

    select * from {{ crm_source('profiles') }}

),

renamed as (

    select
        profile_id,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(last_name), '') as last_name,
        lower(nullif(trim(email), '')) as email,
        nullif(trim(address_line_1), '') as address_line_1,
        nullif(trim(address_line_2), '') as address_line_2,
        nullif(trim(postal_code), '') as postal_code,
        nullif(trim(city), '') as city,
        nullif(trim(region), '') as region,
        upper(nullif(trim(country_code), '')) as country_code,
        lower(coalesce(nullif(trim(language), ''), 'en')) as language,
        lower(loyalty_tier) as loyalty_tier,
        currency,
        birth_date,
        created_at

    from source

)

select * from renamed
